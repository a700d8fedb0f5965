"""Retry policy: exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential bound) spreads retries of many
workers that failed together, as described in the AWS architecture note "Exponential Backoff
And Jitter". The random source is injectable:

>>> policy = RetryPolicy(max_retries=3, base=2.0, cap=60.0)
>>> [policy.bound(attempt) for attempt in (1, 2, 3, 4)]
[2.0, 4.0, 8.0, 16.0]
>>> policy.delay(3, rand=lambda: 0.5)
4.0
>>> policy.should_retry(3), policy.should_retry(4)
(True, False)
"""

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy", "DEFAULT_RETRY_POLICY"]


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first try; delays in seconds."""

    max_retries: int = 3
    base: float = 2.0
    cap: float = 300.0

    def bound(self, attempt):
        """Upper bound of the delay before retry number ``attempt`` (1-based)."""
        return min(self.cap, self.base * (2 ** (attempt - 1)))

    def delay(self, attempt, rand=random.random):
        """Delay before retry number ``attempt``: uniform in [0, bound]."""
        return self.bound(attempt) * rand()

    def should_retry(self, attempt):
        """Tell whether retry number ``attempt`` (1-based) is still allowed."""
        return attempt <= self.max_retries


DEFAULT_RETRY_POLICY = RetryPolicy()
