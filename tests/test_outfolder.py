"""Output paths (issue 17 items 1, 2, 3, 8, 9, 13): nothing read or foreign is replaced,
path errors come before the work as one line, a racing second writer fails, leftovers of a
killed write are cleaned, a second Ctrl-C keeps the plan, modes follow the umask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from optisite import outfolder
from optisite.cli import main
from optisite.errors import OutputExistsError

from test_interrupts import assert_clean, write_instance


def solve(instance, out, *extra):
    return CliRunner().invoke(main, ["solve", str(instance), "--out", str(out), "--quiet", "--model", "coverage",
                                     *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(r) -> str:
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert "Traceback" not in r.output, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    return lines[0]


@pytest.fixture
def no_solve(monkeypatch):
    """Path errors must come before the work: solving fails the test."""
    def boom(*_a, **_k):
        raise AssertionError("the solve ran before the output path was checked")
    monkeypatch.setattr("optisite.pipeline.solve", boom)


# ---------------------------------------------------------------------------------
# 1. An output never is, holds or lies inside an input folder
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_out_overlapping_the_instance_is_refused(tiny_copy, tmp_path, no_solve, where):
    out = {"same": tiny_copy, "inside": tiny_copy / "res", "holds": tmp_path}[where]
    before = snapshot(tmp_path)
    for extra in ((), ("--force",)):
        r = solve(tiny_copy, out, *extra)
        assert r.exit_code == 2
        assert "that this run reads" in one_error_line(r)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_instance_folder_is_not_overwritten_even_when_optisite_built_it(tiny_copy, no_solve):
    (tiny_copy / ".optisite").write_text('{"kind": "instance"}', encoding="utf-8")
    before = snapshot(tiny_copy)
    r = solve(tiny_copy, tiny_copy, "--force")
    assert r.exit_code == 2 and "reads" in one_error_line(r)
    assert snapshot(tiny_copy) == before


def test_apl_and_frontier_outputs_stay_out_of_the_instance(tiny_copy):
    before = snapshot(tiny_copy)
    r = CliRunner().invoke(main, ["apl", str(tiny_copy), "--out", str(tiny_copy / "zones.csv"), "--force"])
    assert r.exit_code == 2 and "reads" in one_error_line(r)
    r = CliRunner().invoke(main, ["frontier", str(tiny_copy), "--budgets", "0,10000", "--out", str(tiny_copy),
                                  "--force"])
    assert r.exit_code == 2 and "reads" in r.output and "Traceback" not in r.output
    assert snapshot(tiny_copy) == before


# ---------------------------------------------------------------------------------
# 2. --force only replaces a folder optisite wrote; links are written through or refused
# ---------------------------------------------------------------------------------

def test_force_refuses_a_folder_optisite_did_not_write(tiny_copy, tmp_path, no_solve):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone.txt").write_text("theirs", encoding="utf-8")
    (shared / "solution.json").write_text("{}", encoding="utf-8")
    ident, before = os.stat(shared), snapshot(shared)
    r = solve(tiny_copy, shared, "--force")
    assert r.exit_code == 2
    line = one_error_line(r)
    assert "not a solution folder written by optisite" in line and "choose another --out" in line
    after = os.stat(shared)
    assert (after.st_ino, after.st_mode) == (ident.st_ino, ident.st_mode)
    assert snapshot(shared) == before


def test_force_refuses_another_kind_of_optisite_folder(tiny_copy, tmp_path, no_solve):
    out = tmp_path / "front"
    out.mkdir()
    (out / ".optisite").write_text('{"kind": "frontier"}', encoding="utf-8")
    r = solve(tiny_copy, out, "--force")
    assert r.exit_code == 2 and "holds a frontier written by optisite, not a solution" in one_error_line(r)


def test_link_to_a_foreign_folder_is_refused_and_left_alone(tiny_copy, tmp_path, no_solve):
    target = tmp_path / "target"
    target.mkdir()
    (target / "data.txt").write_text("keep", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    r = solve(tiny_copy, link, "--force")
    assert r.exit_code == 2 and "not a solution folder written by optisite" in one_error_line(r)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert snapshot(target) == {"data.txt": b"keep"}
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    r = solve(tiny_copy, dangling, "--force")
    assert r.exit_code == 2 and "symbolic link to nothing" in one_error_line(r)
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_link_to_a_solution_folder_is_written_through(tiny_copy, tmp_path):
    target = tmp_path / "runs" / "run-1"
    assert solve(tiny_copy, target, "--budget", "30000").exit_code == 0
    (target / "notes.md").write_text("mine", encoding="utf-8")
    link = tmp_path / "latest"
    link.symlink_to(target, target_is_directory=True)
    r = solve(tiny_copy, link, "--budget", "90000", "--force")
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    summary = json.loads((target / "solution.json").read_text(encoding="utf-8"))
    assert summary["budget"] == 90000
    assert (target / "notes.md").read_text(encoding="utf-8") == "mine"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run-1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_folder_optisite_writes_is_marked(tiny_copy, tmp_path):
    out = tmp_path / "res"
    assert solve(tiny_copy, out).exit_code == 0
    marker = json.loads((out / ".optisite").read_text(encoding="utf-8"))
    assert marker["kind"] == "solution" and marker["optisite"]
    assert {"solution.json", "zones.csv", "report.html"} <= set(marker["files"])
    assert "map.html" not in marker["files"]


# ---------------------------------------------------------------------------------
# 3. Two writers to one --out
# ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_plans(tmp_path_factory):
    from optisite.instance import load_instance
    from optisite.pipeline import SolveOptions
    from optisite.pipeline import solve as run
    from conftest import INSTANCES

    inst = load_instance(INSTANCES / "tiny")
    low = run(inst.with_parameters({"budget": 30000}), SolveOptions(model="coverage"))
    high = run(inst.with_parameters({"budget": 90000}), SolveOptions(model="coverage"))
    assert low.summary["budget"] != high.summary["budget"]
    return low, high


def _budget(out: Path) -> float:
    return json.loads((out / "solution.json").read_text(encoding="utf-8"))["budget"]


def test_a_writer_that_finds_the_folder_written_meanwhile_fails(two_plans, tmp_path, monkeypatch):
    """The other run finishes while this one assembles its folder: this one must fail, not
    swap the other's result away (the existence check is part of the final rename)."""
    import optisite.solution as solution

    low, high = two_plans
    out = tmp_path / "res"
    geo = solution._write_geo
    state = {"other": True}

    def other_run_finishes_meanwhile(sol, folder):
        geo(sol, folder)
        if state.pop("other", False):
            high.write(out)

    monkeypatch.setattr(solution, "_write_geo", other_run_finishes_meanwhile)
    with pytest.raises(OutputExistsError, match="another run"):
        low.write(out)
    assert _budget(out) == 90000
    assert assert_clean(out, {"optimal"}) == "optimal"


def test_with_force_the_folder_is_one_complete_run(two_plans, tmp_path, monkeypatch):
    import optisite.solution as solution

    low, high = two_plans
    out = tmp_path / "res"
    low.write(out)
    (out / "mine.txt").write_text("keep", encoding="utf-8")
    geo = solution._write_geo
    state = {"other": True}

    def other_run_finishes_meanwhile(sol, folder):
        geo(sol, folder)
        if state.pop("other", False):
            high.write(out, force=True)

    monkeypatch.setattr(solution, "_write_geo", other_run_finishes_meanwhile)
    low.write(out, force=True)
    assert _budget(out) == 30000
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep"
    assert assert_clean(out, {"optimal"}) == "optimal"
    sites = (out / "sites.csv").read_text(encoding="utf-8")
    assert sorted(line.split(",")[0] for line in sites.splitlines()[1:]) == low.open_sites


def test_two_concurrent_solves_to_one_out(tiny_copy, tmp_path):
    cmd = [sys.executable, "-m", "optisite", "solve", str(tiny_copy), "--model", "coverage", "--quiet",
           "--threads", "1"]
    for trial in range(3):
        out = tmp_path / f"res{trial}"
        procs = [subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
        codes = sorted(rc for rc, _, _ in results)
        assert codes == [0, 2], results
        failed = next(err for rc, _, err in results if rc == 2)
        assert "Traceback" not in failed and ("already exists" in failed or "another run" in failed)
        assert assert_clean(out, {"optimal"}) == "optimal"


# ---------------------------------------------------------------------------------
# 8. Path errors before the work, one line, exit 2
# ---------------------------------------------------------------------------------

@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nothing can be created in: a read-only mount as root, else mode 555."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)],
                             capture_output=True).returncode == 0
    yield d if mounted else Path("/sys")  # root without mount rights: sysfs refuses new folders
    if mounted:
        subprocess.run(["umount", str(d)], check=True)


def test_readonly_parent_is_refused_before_solving(tiny_copy, readonly_dir, no_solve):
    r = solve(tiny_copy, readonly_dir / "res")
    assert r.exit_code == 2 and "cannot write in" in one_error_line(r)


def test_parent_that_is_a_file_is_refused_before_solving(tiny_copy, tmp_path, no_solve):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    r = solve(tiny_copy, tmp_path / "afile" / "res")
    assert r.exit_code == 2 and "is not a folder" in one_error_line(r)
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "x"


def test_overlong_name_is_refused_before_solving(tiny_copy, tmp_path, no_solve):
    r = solve(tiny_copy, tmp_path / ("n" * 300))
    assert r.exit_code == 2 and "give a shorter name" in one_error_line(r)
    r = solve(tiny_copy, tmp_path / ("n" * 300) / "res")
    assert r.exit_code == 2 and "give a shorter name" in one_error_line(r)


@pytest.mark.parametrize("force", [(), ("--force",)])
def test_current_folder_is_refused_before_solving(tiny_copy, tmp_path, no_solve, monkeypatch, force):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".optisite").write_text('{"kind": "solution"}', encoding="utf-8")
    monkeypatch.chdir(work)
    for out in (".", str(work)):
        r = solve(tiny_copy, out, *force)
        assert r.exit_code == 2 and "--out" in one_error_line(r)
    assert sorted(p.name for p in work.iterdir()) == [".optisite"]


def test_library_check_writable(tmp_path):
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with pytest.raises(outfolder.OutputPathError, match="is not a folder"):
        outfolder.check_writable(tmp_path / "f" / "res")
    assert outfolder.check_writable(tmp_path / "new" / "deeper" / "res") == []
    assert not (tmp_path / "new").exists()  # checking creates nothing


# ---------------------------------------------------------------------------------
# 9. Leftovers of a killed write; a second Ctrl-C while writing
# ---------------------------------------------------------------------------------

KILL_WHILE_WRITING = textwrap.dedent("""
    import os, sys
    import optisite.solution as solution
    from optisite.instance import load_instance
    from optisite.pipeline import SolveOptions, solve
    sol = solve(load_instance(sys.argv[1]), SolveOptions(model="coverage"))
    def killed(*_a):
        os.kill(os.getpid(), 9)
    solution._write_geo = killed
    sol.write(sys.argv[2])
""")


def test_leftover_of_a_killed_write_is_cleaned_by_the_next_run(tiny_copy, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING, str(tiny_copy), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".res.tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "sites.csv").is_file()
    assert not out.exists()
    r = solve(tiny_copy, tmp_path / "other")  # another output into the same parent
    assert r.exit_code == 0, r.output
    assert "removed" in r.output and leftovers[0].name in r.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_leftover_holding_user_files_is_kept_and_named(tmp_path):
    left = tmp_path / ".res.tmp-abcd1234"
    left.mkdir()
    (left / ".optisite").write_text('{"kind": "solution", "files": ["sites.csv"]}', encoding="utf-8")
    (left / "sites.csv").write_text("x", encoding="utf-8")
    (left / "mine.txt").write_text("keep", encoding="utf-8")
    warnings = outfolder.clean_leftovers(tmp_path)
    assert len(warnings) == 1 and "kept" in warnings[0] and "mine.txt" in warnings[0]
    assert sorted(p.name for p in left.iterdir()) == ["mine.txt"]


def test_a_folder_being_written_by_a_live_run_is_not_cleaned(tmp_path):
    code = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from optisite import outfolder
        tmp, fd = outfolder._make_temp(Path(sys.argv[1]), "res", "solution", ["sites.csv"])
        print(tmp, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        live = Path(proc.stdout.readline().strip())
        assert live.is_dir()
        assert outfolder.clean_leftovers(tmp_path) == []
        assert live.is_dir()
    finally:
        proc.kill()
        proc.wait()
    assert len(outfolder.clean_leftovers(tmp_path)) == 1  # dead now: cleaned
    assert not live.exists()


def test_signals_are_held_until_the_write_ends(tmp_path):
    out = tmp_path / "res"

    def fill(tmp):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        (tmp / "a.txt").write_text("a", encoding="utf-8")

    with pytest.raises(KeyboardInterrupt) as caught:
        outfolder.write_folder(out, fill, kind="solution", own=["a.txt"])
    assert caught.value.written == str(out)
    assert (out / "a.txt").read_text(encoding="utf-8") == "a"


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return write_instance(tmp_path_factory.mktemp("big") / "inst")


def test_ctrl_c_while_writing_keeps_the_plan(big, tmp_path):
    """A Ctrl-C while the folder is written (the second one, after a first stopped the solve,
    or the first after a time limit) is held until the folder is complete, then stops the run."""
    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "optisite", "solve", str(big), "--out", str(out),
                             "--time-limit", "1", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "writing report.html" not in seen:
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    stderr = seen + stderr
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and str(out) in stopped[0] and "nothing was written" not in stopped[0]
    assert assert_clean(out, {"time_limit"}) == "time_limit"


# ---------------------------------------------------------------------------------
# 13. Modes follow the umask
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_modes_follow_the_umask(tiny_copy, tmp_path, mask):
    old = os.umask(mask)
    try:
        out = tmp_path / "res"
        assert solve(tiny_copy, out).exit_code == 0
        assert out.stat().st_mode & 0o777 == 0o777 & ~mask
        for f in out.iterdir():
            assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f.name
        r = CliRunner().invoke(main, ["report", str(out), str(tiny_copy)])
        assert r.exit_code == 0, r.output
        assert (out / "report.html").stat().st_mode & 0o777 == 0o666 & ~mask
        csv = tmp_path / "apl.csv"
        assert CliRunner().invoke(main, ["apl", str(tiny_copy), "--out", str(csv)]).exit_code == 0
        assert csv.stat().st_mode & 0o777 == 0o666 & ~mask
    finally:
        os.umask(old)


def test_single_file_without_force_is_created_once(tmp_path):
    path = tmp_path / "t.csv"
    outfolder.write_file(path, "a\n", force=False)
    with pytest.raises(OutputExistsError):
        outfolder.write_file(path, "b\n", force=False)
    assert path.read_text(encoding="utf-8") == "a\n"
    outfolder.write_file(path, "c\n", force=True)
    assert path.read_text(encoding="utf-8") == "c\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


# ---------------------------------------------------------------------------------
# Output paths, fuzzed: every case is written completely or refused in one line, before
# the work; inputs, foreign folders and link targets are never touched.
# ---------------------------------------------------------------------------------

from collections import Counter  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PATH_STATS: Counter = Counter()
SEGMENTS = ["res", "new", ".", "..", "n" * 300, "afile", "tiny", "shared", "sol", "front", "link-sol",
            "link-shared", "dangling", "tiny/zones.csv"]


def _world(root: Path, sol) -> dict[str, Path]:
    import shutil

    from conftest import INSTANCES

    shutil.copytree(INSTANCES / "tiny", root / "tiny")
    (root / "afile").write_text("precious", encoding="utf-8")
    (root / "shared").mkdir()
    (root / "shared").chmod(0o1777)
    (root / "shared" / "theirs.txt").write_text("theirs", encoding="utf-8")
    sol.write(root / "sol")
    (root / "sol" / "notes.md").write_text("mine", encoding="utf-8")
    (root / "front").mkdir()
    (root / "front" / ".optisite").write_text('{"kind": "frontier"}', encoding="utf-8")
    (root / "link-sol").symlink_to(root / "sol", target_is_directory=True)
    (root / "link-shared").symlink_to(root / "shared", target_is_directory=True)
    (root / "dangling").symlink_to(root / "nowhere")
    return {"tiny": root / "tiny", "shared": root / "shared", "sol": root / "sol"}


def _state(paths: dict[str, Path]) -> dict:
    """What no output may change: the instance, the foreign folder's own file, mode and
    identity (a new folder may be created in it), the user's notes in a solution folder."""
    st_shared = os.stat(paths["shared"])
    return {"tiny": snapshot(paths["tiny"]), "theirs": (paths["shared"] / "theirs.txt").read_bytes(),
            "shared_id": (st_shared.st_ino, st_shared.st_mode),
            "notes": (paths["sol"] / "notes.md").read_bytes()}


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3), force=st.booleans(),
       absolute=st.sampled_from(["relative", "absolute", "sys"]))
def test_output_paths_fuzzed(two_plans, parts, force, absolute):
    import shutil
    import tempfile

    from optisite.errors import OptisiteError

    low, _ = two_plans
    root = Path(tempfile.mkdtemp(prefix="outfuzz-")).resolve()
    here = Path.cwd()
    try:
        paths = _world(root, low)
        before = _state(paths)
        os.chdir(root)
        out = Path(*parts)
        out = {"relative": out, "absolute": root / out, "sys": Path("/sys") / out}[absolute]
        PATH_STATS["tried"] += 1
        try:
            outfolder.check_writable(out, force=force, reads=[paths["tiny"]])
        except OptisiteError as exc:
            assert "\n" not in str(exc)
            PATH_STATS["refused"] += 1
            outcome = "refused"
        else:
            written = low.write(out, force=force)  # after a passed check the write must succeed
            real = Path(os.path.realpath(written))
            assert outfolder.read_marker(real)["kind"] == "solution"
            assert json.loads((real / "solution.json").read_text(encoding="utf-8"))["status"] == "optimal"
            assert not [p for p in real.parent.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
            PATH_STATS["written"] += 1
            outcome = "written"
        after = _state(paths)
        assert after == before, (out, force, outcome)
        assert (root / "afile").read_text(encoding="utf-8") == "precious"
        assert (root / "link-sol").is_symlink() and (root / "link-shared").is_symlink()
    finally:
        os.chdir(here)
        shutil.rmtree(root, ignore_errors=True)


def test_zz_output_path_counts():
    """The fuzzed cases ran (counts printed with -rP): tried = written + refused, no traceback."""
    print(f"output paths: {dict(PATH_STATS)}")
    assert PATH_STATS["tried"] >= 100
    assert PATH_STATS["tried"] == PATH_STATS["written"] + PATH_STATS["refused"]
    assert PATH_STATS["written"] > 0 and PATH_STATS["refused"] > 0
