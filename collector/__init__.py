"""The fieldpost collector: ingests agent reports, raises alerts, serves the live feed and the API."""
