"""--out safety: nothing existing is touched without --force; with it, only optisite's files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from optisite.cli import main


def solve(instance, out, *extra):
    return CliRunner().invoke(main, ["solve", str(instance), "--out", str(out), "--quiet", "--model", "coverage",
                                     *extra])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_folder_is_refused_without_force(tiny_copy, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "solution.json").write_text("{}", encoding="utf-8")
    (out / "mine.txt").write_text("keep", encoding="utf-8")
    before = snapshot(out)
    r = solve(tiny_copy, out)
    assert r.exit_code == 2
    assert "already exists" in r.output and "--force" in r.output
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "tiny"]


def test_force_replaces_only_optisites_files(tiny_copy, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / ".optisite").write_text('{"kind": "solution"}', encoding="utf-8")  # a folder optisite wrote
    (out / "solution.json").write_text('{"old": true}', encoding="utf-8")
    (out / "sites.csv").write_text("stale\n", encoding="utf-8")
    (out / "mine.txt").write_text("keep", encoding="utf-8")
    (out / "notes").mkdir()
    (out / "notes" / "a.md").write_text("sub", encoding="utf-8")
    r = solve(tiny_copy, out, "--force")
    assert r.exit_code == 0, r.output
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep"
    assert (out / "notes" / "a.md").read_text(encoding="utf-8") == "sub"
    summary = json.loads((out / "solution.json").read_text(encoding="utf-8"))
    assert "old" not in summary and summary["status"] == "optimal"
    assert (out / "sites.csv").read_text(encoding="utf-8").startswith("site_id,")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_out_pointing_at_a_file_is_refused(tiny_copy, tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("precious\n", encoding="utf-8")
    for extra in ((), ("--force",)):
        r = solve(tiny_copy, target, *extra)
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
        assert target.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "tiny"]


def test_write_folder_refuses_a_file_from_the_library(tiny_copy, tmp_path):
    import pytest

    from optisite.errors import OutputExistsError
    from optisite.instance import load_instance
    from optisite.pipeline import SolveOptions
    from optisite.pipeline import solve as run

    sol = run(load_instance(tiny_copy), SolveOptions(model="coverage"))
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        sol.write(target, force=True)
    assert target.read_text(encoding="utf-8") == "x"
    sol.write(tmp_path / "new")
    with pytest.raises(OutputExistsError):
        sol.write(tmp_path / "new")
