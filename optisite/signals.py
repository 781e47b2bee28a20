"""SIGINT and SIGTERM, handled one way: the one exception a stop raises, and a scoped handler.

The CLI turns both signals into :class:`Interrupted` (a KeyboardInterrupt, so ``finally``
blocks remove temporary files); while HiGHS runs, the solver instead asks HiGHS to stop
and keep its incumbent (HiGHS in a child process: the signal is passed on to the child,
which is killed if it has not returned 2 s later; ``optisite/hard_stop.py``). Both install their handler with :func:`handling`, which
restores the previous one on exit and does nothing outside the main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped optisite; ``signal_name`` gives the exit code (130, 143)."""

    def __init__(self, signal_name: str = "SIGINT"):
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextlib.contextmanager
def handling(on_signal: Callable[[str], None]):
    """Call ``on_signal(name)`` on SIGINT/SIGTERM while inside; the previous handlers come back
    on exit. Only the main thread may install handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: on_signal(signal.Signals(signum).name))
                for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def raise_interrupted(name: str) -> None:
    raise Interrupted(name)
