"""The worked example in docs/example.py runs as written, and the API it shows holds."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import optisite as ops

ROOT = Path(__file__).resolve().parents[1]


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["example.py", "20", str(tmp_path)])
    runpy.run_path(str(ROOT / "docs" / "example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "<Instance 'Nièvre (58)'" in out and "checked from the files: ok" in out
    assert "parameters that differ: ['budget']" in out
    S = json.loads((tmp_path / "staffing" / "solution.json").read_text(encoding="utf-8"))
    assert S["check"]["ok"] and (tmp_path / "staffing" / "report.html").is_file()


def test_top_level_api_names_functions():
    for name in ("load_instance", "solve", "check", "render_report", "run_frontier",
                 "compare_folders", "list_models"):
        assert callable(getattr(ops, name)), name
    import optisite.build  # noqa: F401  importing the modules must not shadow the API
    import optisite.cli  # noqa: F401
    import optisite.compare  # noqa: F401
    import optisite.models  # noqa: F401
    import optisite.report  # noqa: F401

    for name in ("solve", "check", "render_report", "run_frontier", "compare_folders", "list_models"):
        assert callable(getattr(ops, name)), name
    assert callable(ops.solve) and callable(ops.compare_folders)


def test_reprs_are_short():
    inst = ops.load_instance(ROOT / "instances" / "nievre-58")
    assert len(repr(inst)) < 300
    sol = ops.solve(ops.load_instance(ROOT / "instances" / "tiny"), ops.SolveOptions(time_limit=20, threads=1))
    assert len(repr(sol)) < 300 and "staffing" in repr(sol)
