"""A circuit breaker for the broker, so saves pay nothing while it is known to be down.

closed --failure--> open --reset_timeout elapsed--> half-open (one probe allowed)
half-open --success--> closed;  half-open --failure--> open again.

The clock is injectable so the behaviour is deterministic in tests:

>>> now = [0.0]
>>> breaker = CircuitBreaker(reset_timeout=30, clock=lambda: now[0])
>>> breaker.allow()
True
>>> breaker.record_failure()
>>> breaker.state, breaker.allow()
('open', False)
>>> now[0] = 31.0
>>> breaker.allow(), breaker.state
(True, 'half_open')
>>> breaker.allow()            # only one probe while half-open
False
>>> breaker.record_success()
>>> breaker.state
'closed'
"""

import threading
import time

__all__ = ["CircuitBreaker", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe breaker: ``failure_threshold`` failures in a row open it."""

    def __init__(self, failure_threshold=1, reset_timeout=30.0, clock=time.monotonic):
        # One failure is enough by default: a failed connect already cost the user the
        # connect timeout, the next save should not pay it again.
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = None
        self._probing = False

    @property
    def state(self):
        with self._lock:
            return self._state

    def seconds_until_probe(self):
        """Seconds left before a probe is allowed (0 when closed or half-open)."""
        with self._lock:
            if self._state != OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def allow(self):
        """Tell whether a call to the broker may be attempted now."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
                self._state = HALF_OPEN
                self._probing = False
            if self._state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self):
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._probing = False

    def record_failure(self):
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()
                self._probing = False

    def release_probe(self):
        """Give back a half-open probe that was not used (nothing was sent)."""
        with self._lock:
            self._probing = False

    def reset(self):
        """Close the breaker (after a configuration change, or in tests)."""
        self.record_success()
