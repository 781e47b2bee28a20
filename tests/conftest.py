import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def tiny_copy(tmp_path):
    """A writable copy of the tiny hand-made instance."""
    dst = tmp_path / "tiny"
    shutil.copytree(INSTANCES / "tiny", dst)
    return dst


import signal as _signal

import pytest as _pytest


@_pytest.fixture(autouse=True)
def _default_signal_handlers():
    """Every test starts with Python's own SIGINT/SIGTERM handling and leaves it so: a CLI or
    solver test that installs a handler (in-process, through CliRunner) cannot change what a
    later test sees."""
    previous = {sig: _signal.getsignal(sig) for sig in (_signal.SIGINT, _signal.SIGTERM)}
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    yield
    for sig, handler in previous.items():
        _signal.signal(sig, handler if handler is not None else _signal.SIG_DFL)
