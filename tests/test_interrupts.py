"""Interrupted runs: SIGINT, SIGTERM and --time-limit leave no folder or a complete one.

Each test runs ``python -m optisite solve`` in a subprocess on a random instance of a
few thousand zones (several seconds of HiGHS), waits for "solving with HiGHS" on
stderr and sends the signal. Outcomes allowed by ``models/outputs.md``: no output
folder at all, or a complete folder whose ``solution.json`` says ``interrupted`` (or
``time_limit``); never a temporary ``.NAME.tmp-*`` sibling, never a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TABLES = ("solution.json", "sites.csv", "schedule.csv", "practices.csv", "assignment.csv", "zones.csv")


def write_instance(folder: Path, n_zones=2200, n_sites=450, n_practices=120, seed=1, budget=3e6) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    zones = pd.DataFrame({"zone_id": [f"Z{i:05d}" for i in range(n_zones)],
                          "population": rng.integers(50, 5000, n_zones),
                          "lon": 2.0 + rng.uniform(0, 2.0, n_zones), "lat": 46.0 + rng.uniform(0, 1.4, n_zones)})
    at = rng.choice(n_zones, n_sites, replace=False)
    sites = pd.DataFrame({"site_id": [f"S{j:04d}" for j in range(n_sites)],
                          "kind": np.where(np.arange(n_sites) % 5 == 0, "centre_de_sante", "cabinet_secondaire"),
                          "zone_id": zones["zone_id"].to_numpy()[at],
                          "fixed_cost": rng.integers(1, 9, n_sites) * 10000})
    at = rng.choice(n_zones, n_practices, replace=False)
    practices = pd.DataFrame({"practice_id": [f"P{k:04d}" for k in range(n_practices)],
                              "zone_id": zones["zone_id"].to_numpy()[at],
                              "physicians": rng.integers(1, 6, n_practices)})
    for name, frame in (("zones", zones), ("sites", sites), ("practices", practices)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "instance.toml").write_text(
        'name = "random"\nsupply_source = "user"\n[tables]\nzones = "zones.csv"\nsites = "sites.csv"\n'
        f'practices = "practices.csv"\n[parameters]\nbudget = {budget}\n', encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return write_instance(tmp_path_factory.mktemp("big") / "inst")


def run_and_signal(instance: Path, out: Path, sig: int | None, delay: float, *extra: str):
    proc = subprocess.Popen([sys.executable, "-m", "optisite", "solve", str(instance), "--out", str(out),
                             "--time-limit", "120", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "solving with HiGHS" not in seen:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert "solving with HiGHS" in seen, seen
    if sig is not None:
        time.sleep(delay)
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, seen + stderr


def assert_clean(out: Path, allowed: set[str]) -> str | None:
    """No leftover temporary sibling; the folder is absent or complete. Returns its status."""
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == []
    if not out.exists():
        return None
    for name in TABLES:
        assert (out / name).is_file(), name
    summary = json.loads((out / "solution.json").read_text(encoding="utf-8"))
    assert summary["status"] in allowed
    assert summary["check"]["ok"], summary["check"]
    for name in TABLES[1:]:
        pd.read_csv(out / name)  # parses completely
    return summary["status"]


@pytest.mark.parametrize("sig, code, delay", [(signal.SIGTERM, 143, 0.2),
                                              (signal.SIGINT, 130, 6.0)])
def test_signal_leaves_nothing_or_a_complete_folder(big, tmp_path, sig, code, delay):
    out = tmp_path / "res"
    rc, stdout, stderr = run_and_signal(big, out, sig, delay)
    assert rc == code, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    name = signal.Signals(sig).name
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and name in stopped[0]
    status = assert_clean(out, {"interrupted"})
    if status is None:
        assert "nothing was written" in stopped[0]
    else:
        assert "best plan found so far" in stopped[0]


def test_signal_before_solving_writes_nothing(big, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "optisite", "solve", str(big), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "finding reachable pairs": loading is done, the build is running
    assert "reachable" in line
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in stderr
    assert "nothing was written" in stderr
    assert not out.exists()
    assert assert_clean(out, set()) is None


def test_interrupt_keeps_an_existing_folder_intact(big, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / ".optisite").write_text('{"kind": "solution"}', encoding="utf-8")  # a folder optisite wrote
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "solution.json").write_text('{"status": "optimal", "old": true}', encoding="utf-8")
    rc, _, stderr = run_and_signal(big, out, signal.SIGINT, 0.2, "--force")
    assert rc == 130, stderr
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    summary = json.loads((out / "solution.json").read_text(encoding="utf-8"))
    if "old" not in summary:  # replaced: then by a complete, interrupted folder
        assert assert_clean(out, {"interrupted"}) == "interrupted"
    else:
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".res.")] == []


def test_time_limit_writes_a_complete_folder_saying_so(big, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "optisite", "solve", str(big), "--out", str(out),
                           "--time-limit", "0.5", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert assert_clean(out, {"time_limit"}) == "time_limit"
