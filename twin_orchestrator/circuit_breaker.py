"""A per-downstream circuit breaker, so a service known to be down costs no waiting.

CLOSED: calls go through; ``failure_threshold`` consecutive transport failures
(UNAVAILABLE, DEADLINE_EXCEEDED) open it. OPEN: calls are refused at once.
HALF_OPEN: one trial call is let through; success closes the breaker, failure
opens it again.

OPEN turns HALF_OPEN after ``reset_seconds``, or earlier as soon as ``probe``
says the service is reachable again (the orchestrator passes "the channel has
reconnected"; gRPC reconnects within about a second, common/channels.py). So
a service that comes back is used again within about a second of serving,
while one that stays down costs one fast-failing trial per ``reset_seconds``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

#: How long an open breaker refuses calls before it lets one trial through.
DEFAULT_RESET_SECONDS = 1.0


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        reset_seconds: float = DEFAULT_RESET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        probe: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._clock = clock
        self._probe = probe
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and (
            self._clock() - self._opened_at >= self._reset or self._probe_says_up()
        ):
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        return self._state

    def _probe_says_up(self) -> bool:
        if self._probe is None:
            return False
        try:
            return self._probe()
        except Exception:
            return False

    def allow(self) -> bool:
        """Whether a call may go out now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial_in_flight = False
