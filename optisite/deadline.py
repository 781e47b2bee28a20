"""One deadline for a whole solve: every step after the user pressed enter draws on it.

The pipeline creates one :class:`Deadline` from ``--time-limit`` and passes it down;
pairs, build, start, every HiGHS stage, the baseline, the APL and the checker ask it
how many seconds are left instead of trimming copies of the limit.
"""

from __future__ import annotations

import time


class Deadline:
    """Seconds left of a limit started at construction (``None``: no limit)."""

    def __init__(self, seconds: float | None, *, clock=time.perf_counter):
        self.seconds = None if seconds is None else max(0.0, float(seconds))
        self._clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def left(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a limit."""
        return None if self.seconds is None else max(0.0, self.seconds - self.elapsed())

    def expired(self, margin: float = 0.0) -> bool:
        left = self.left()
        return left is not None and left <= margin

    def part(self, share: float, *, at_most: float | None = None, at_least: float = 0.0) -> float | None:
        """Seconds for one sub-step: ``share`` of what is left, within [at_least, at_most],
        never more than what is left. Without a limit: ``at_most`` (or ``None``)."""
        left = self.left()
        if left is None:
            return at_most
        s = max(at_least, share * left)
        if at_most is not None:
            s = min(s, at_most)
        return min(s, left)

    def __repr__(self) -> str:
        left = self.left()
        return "Deadline(no limit)" if left is None else f"Deadline({left:.1f} s left of {self.seconds:g})"
