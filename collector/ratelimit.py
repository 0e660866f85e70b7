"""Token-bucket rate limits by key (a backup job's token, an agent), on monotonic seconds."""

from __future__ import annotations


class RateLimiter:
    """Token buckets by key: up to `burst` calls at once, refilled at `per_minute` calls a minute."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        """The tokens in a key's bucket at `now` (a key never seen has a full bucket)."""
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: str, now: float) -> float:
        """Take one call for `key` at `now` (monotonic seconds): 0 when allowed, else seconds to wait."""
        tokens = self._level(key, now)
        if tokens < 1:
            return (1 - tokens) / self.rate
        if len(self._buckets) >= self.max_keys:
            # Full buckets say nothing a new bucket would not, so forgetting them bounds memory.
            self._buckets = {k: v for k, v in self._buckets.items() if self._level(k, now) < self.burst}
        self._buckets[key] = (tokens - 1, now)
        return 0.0
