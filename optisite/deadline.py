"""One deadline for a whole solve: every step after the user pressed enter draws on it.

The pipeline creates one :class:`Deadline` from ``--time-limit`` (the command line
starts it when the command starts, so loading counts) and passes it down; pairs,
build, start, every HiGHS stage, the baseline, the APL and the checker ask it how many
seconds are left instead of trimming copies of the limit.

Two clocks, because a wall clock is not reproducible (``models/solving.md``, "The time
limit"): HiGHS's branch and bound stops first on an **effort budget**, a count of
nodes derived from the limit and the model's size only (:func:`node_budget`), so that
the same command on the same machine stops at the same node and returns the same
plan; the wall clock stays as a safety net, and a HiGHS run that ignores it (presolve,
a root LP) is ended by the hard stop (``optisite/hard_stop.py``). Every step that the wall clock shortens or
skips is noted with :meth:`Deadline.cut`: the solution says whether its run can be
reproduced.
"""

from __future__ import annotations

import math
import time

#: ``time.perf_counter()`` when the ``optisite`` command started (set by ``optisite.entry``
#: before the heavy imports), so that the limit bounds the command, not only the solve.
COMMAND_START: float | None = None


def mark_command_start() -> None:
    """Remember now as the start of the command (called once, first thing)."""
    global COMMAND_START
    COMMAND_START = time.perf_counter()


def tolerance(seconds: float | None) -> float | None:
    """The stated overrun allowed past ``--time-limit`` for the whole command:
    max(5 s, 10 % of the limit) (``models/solving.md``)."""
    return None if seconds is None else max(5.0, 0.1 * float(seconds))


class Deadline:
    """Seconds left of a limit started at construction, or at ``start`` (a
    ``perf_counter`` reading: the command's start); ``None``: no limit. Collects the
    steps the wall clock cut (:meth:`cut`)."""

    def __init__(self, seconds: float | None, *, clock=time.perf_counter, start: float | None = None):
        self.seconds = None if seconds is None else max(0.0, float(seconds))
        self._clock = clock
        self.start = clock() if start is None else float(start)
        self.cuts: list[str] = []  # wall-clock cuts that may change the plan
        self.bound_cuts: list[str] = []  # ... that may change only the reported bound

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

    def cut(self, what: str, *, plan: bool = True) -> None:
        """Record that the wall clock shortened or skipped ``what``: the plan (or, with
        ``plan=False``, only the reported bound) may then differ from one run to the next."""
        where = self.cuts if plan else self.bound_cuts
        if what not in where:
            where.append(what)

    def __repr__(self) -> str:
        left = self.left()
        return "Deadline(no limit)" if left is None else f"Deadline({left:.1f} s left of {self.seconds:g})"


# -- the effort budget ----------------------------------------------------------------

#: Branch-and-bound nodes per second of limit on a model of ``NODE_SIZE_UNIT`` matrix
#: entries (nonzeros + rows + columns as HiGHS receives them); fewer on larger models.
#: Calibrated on the 2-core machine (``benchmarks/time_limits.py``) low enough that the
#: node count, not the clock, usually stops the search.
NODES_PER_SECOND = 10.0
NODE_SIZE_UNIT = 50_000


def node_budget(seconds: float | None, size: int) -> int | None:
    """The nodes HiGHS's branch and bound may explore for ``seconds`` of nominal time on
    a model of ``size`` entries: a function of the limit and the model only, never of the
    clock, so a search stopped by it is reproducible. ``None``: no limit."""
    if seconds is None or not math.isfinite(seconds):
        return None
    scale = max(1.0, size / NODE_SIZE_UNIT)
    return max(1, int(NODES_PER_SECOND * max(0.0, seconds) / scale))


#: Seconds kept for the steps after the search (tables, APL, the checker, writing the
#: folder and its report): a base plus a share per zone, at most a share of the limit.
#: Nièvre (539 zones) at load 3: tables and APL about 2 s, checker 1 s, writing (the
#: report's map) 5 s; Ille-et-Vilaine at load 5: about 20 s after its search.
POST_BASE_S = 4.0
POST_PER_ZONE_S = 0.008
POST_MAX_SHARE = 0.3


def post_solve_estimate(zones: int) -> float:
    """Seconds the tables, APL, checker and writing are expected to take (not a share)."""
    return POST_BASE_S + POST_PER_ZONE_S * zones


def post_solve_reserve(seconds: float | None, zones: int) -> float:
    """Seconds the search leaves for what follows it, estimated from the instance size
    (``models/solving.md``, "The time limit")."""
    if seconds is None:
        return 0.0
    return min(POST_MAX_SHARE * seconds, post_solve_estimate(zones))


def floor_warning(seconds: float | None, built_s: float, zones: int) -> str | None:
    """A warning with the figures when ``--time-limit`` is below the run's fixed minimum:
    what start-up, loading and the build took (``built_s``, measured) plus what the tables,
    checker and writing are expected to take; no limit can end the command before that."""
    if seconds is None:
        return None
    post = post_solve_estimate(zones)
    floor = built_s + post
    if floor <= seconds:
        return None
    return (f"the time limit of {seconds:g} s is below this run's fixed minimum of about {floor:.0f} s "
            f"(start-up, loading and the build took {built_s:.1f} s; the tables, the checker and writing need "
            f"about {post:.0f} s more): the command ends past the limit and the search had almost no time")
