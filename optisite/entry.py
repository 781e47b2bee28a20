"""The ``optisite`` console command: stop cleanly even before the CLI has loaded.

Loading pandas, Pyomo and HiGHS takes a second or more; a Ctrl-C or SIGTERM in that
window would print a traceback or end silently. Until the CLI installs its own
handling, both end the process with one line and the conventional exit code.
"""

from __future__ import annotations

import os
import signal
import sys


def _early(signum, _frame) -> None:
    name = signal.Signals(signum).name
    sys.stderr.write(f"stopped: interrupted by {name} while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(128 + signum)  # nothing to clean up yet: no output has been started


def main() -> None:
    from .deadline import mark_command_start

    mark_command_start()  # --time-limit counts from here, before the heavy imports
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _early)
    from .cli import main as cli_main

    cli_main()
