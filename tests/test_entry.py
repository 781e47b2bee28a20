"""A signal while the command is still loading (issue 17 item 9): one line, 130/143, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_loading_is_one_line(tmp_path, sig, code):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "optisite", "solve", str(ROOT / "instances" / "tiny"),
                          "--out", str(tmp_path / "o")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    time.sleep(1.0)  # Python is up; the CLI (pandas, Pyomo) is most likely still loading, and either way
    # the answer must be one line and the signal's exit code
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, (p.returncode, err)
    assert "Traceback" not in err and err.strip().startswith("stopped:"), err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
