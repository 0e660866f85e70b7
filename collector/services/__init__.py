"""The collector's operations, one module per domain, called alike by the JSON API, the dashboard and the CLI.

A service takes the store and the clock (and whatever else it needs) explicitly, takes and returns plain
typed values, appends its live-feed events in the same transaction, and knows nothing of HTTP: it raises
the domain errors of `collector.services.errors`, which the API and the dashboard each map in one place.
"""
