"""fieldpost's wire schema and the small helpers that agent and collector both need."""

__version__ = "0.1.0"
