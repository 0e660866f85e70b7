"""`fieldpost`: the technician's command line, an HTTP client of the collector's API."""
