"""The alert pipeline: steps that turn rule evaluations into alerts, their history and feed events."""
