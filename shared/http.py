"""HTTP names both sides use beyond the signature's: the collector's hints to agents."""

from __future__ import annotations

# Sent by the collector with every answer to a report: the longest an agent should wait between tries
# while it cannot reach the collector (seconds). The collector's start-up grace covers this wait, so
# after an outage every agent is back before anyone could be declared offline.
RECONNECT_HEADER = "Fieldpost-Reconnect-Seconds"
