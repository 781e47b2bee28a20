"""Property tests: random corruptions of the tiny instance never crash the loader or the CLI.

Every generated case must either load (and give a summary) or raise
:class:`InputError` with a one-line message naming the file; ``optisite validate``
must exit with 0 or 2, never 1, and never print a traceback. The runs are
derandomised (same cases in CI every time) and bounded so the module stays fast.
``STATS`` counts the cases and the distinct messages; ``test_zz_report`` prints
them (run with ``-rP`` or ``-s`` to see it) and, when ``OPTISITE_FUZZ_STATS``
names a file, writes them there as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optisite.tables
from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import load_instance

TINY = Path(__file__).resolve().parents[1] / "instances" / "tiny"
TABLES = ["zones.csv", "sites.csv", "practices.csv", "travel.csv"]

STATS: dict = {"cases": 0, "loaded": 0, "refused": 0, "messages": Counter(), "outcomes": Counter(),
               "kinds": {}}  # per widened corpus: tried, refused, accepted/loaded, solved, tracebacks

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------
# values and operations
# ---------------------------------------------------------------------------------

NASTY = [
    "", " ", "nan", "NaN", "NA", "null", "None", "inf", "-inf", "Infinity", "1e400", "-1e400",
    "-1", "-0", "0", "0.0", "-0.5", "1,5", "1.000,5", "1e9", "1e15", "1e308", "9" * 40, "0x10",
    "1_000", "abc", "true", "01001", "2A004", "1001", "\u00a0", "\"", "'", "\"\"", ";", ",", "\t",
    "\u2028", "\x00", "\x07", "é", "Saint-Étienne", "北京", "🏥", "=1+1", "<script>", "../x",
    "cabinet_secondaire", "centre_de_sante", "maison", "200", "-95", "45.5", "4,5",
    "\x1b[2J\x1b[31m", "e\u0301", "\ufeff01001", "\u202e01001",
]
cell_value = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

OPS = ["cell", "cell", "cell", "dup_row", "drop_row", "truncate_row", "extend_row", "drop_col",
       "rename_col", "extra_col", "swap_rows", "id_unicode", "blank_lines", "header_only",
       "copy_id", "quote_break"]


def read_rows(name: str) -> list[list[str]]:
    with open(TINY / name, newline="", encoding="utf-8") as fh:
        return [row for row in csv.reader(fh)]


def apply_op(rows: list[list[str]], op: str, data) -> list[list[str]]:
    rows = [list(r) for r in rows]
    n_rows = len(rows)
    if n_rows == 0:
        return rows
    width = len(rows[0])
    body = max(n_rows - 1, 0)
    pick_row = lambda: data.draw(st.integers(1, n_rows - 1)) if body else 0  # noqa: E731
    pick_col = lambda: data.draw(st.integers(0, max(width - 1, 0)))  # noqa: E731
    if op == "cell" and width:
        r = data.draw(st.integers(0, n_rows - 1))  # the header too
        c = pick_col()
        if c < len(rows[r]):
            rows[r][c] = data.draw(cell_value)
    elif op == "dup_row" and body:
        r = pick_row()
        rows.insert(data.draw(st.integers(1, n_rows)), list(rows[r]))
    elif op == "drop_row" and body:
        del rows[pick_row()]
    elif op == "truncate_row" and body:
        r = pick_row()
        rows[r] = rows[r][: data.draw(st.integers(0, max(len(rows[r]) - 1, 0)))]
    elif op == "extend_row" and body:
        rows[pick_row()].append(data.draw(cell_value))
    elif op == "drop_col" and width:
        c = pick_col()
        rows = [[v for i, v in enumerate(r) if i != c] for r in rows]
    elif op == "rename_col" and width:
        rows[0][pick_col()] = data.draw(st.sampled_from(["id", "zone", "pop", "x", "", "Zone_ID", "lon "]))
    elif op == "extra_col":
        name = data.draw(st.sampled_from(["note", "geometry", "weight", "demand", "lon", "name", "dep", "é"]))
        rows[0].append(name)
        for r in rows[1:]:
            r.append(data.draw(cell_value))
    elif op == "swap_rows" and body > 1:
        a, b = pick_row(), pick_row()
        rows[a], rows[b] = rows[b], rows[a]
    elif op == "id_unicode" and body:
        r = pick_row()
        if rows[r]:
            rows[r][0] = data.draw(st.text(min_size=1, max_size=8))
    elif op == "blank_lines":
        rows.insert(data.draw(st.integers(0, n_rows)), [])
    elif op == "header_only":
        rows = rows[:1]
    elif op == "copy_id" and body > 1:
        a, b = pick_row(), pick_row()
        if rows[a] and rows[b]:
            rows[a][0] = rows[b][0]
    elif op == "quote_break" and body:
        r = pick_row()
        if rows[r]:
            rows[r][0] = '"' + rows[r][0]
    return rows


def serialise(rows: list[list[str]], data) -> bytes:
    style = data.draw(st.sampled_from(["csv", "csv", "semicolon", "tab", "raw"]))
    if style == "raw":  # no quoting at all: separators inside cells break the row
        text = "\n".join(",".join(r) for r in rows) + "\n"
    else:
        sep = {"csv": ",", "semicolon": ";", "tab": "\t"}[style]
        if style == "semicolon":
            rows = [[re.sub(r"(\d)\.(\d)", r"\1,\2", v) for v in r] for r in rows]
        out = io.StringIO(newline="")
        csv.writer(out, delimiter=sep, lineterminator="\n").writerows(rows)
        text = out.getvalue()
    if data.draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    raw = text.encode(encoding, errors="replace")
    if data.draw(st.integers(0, 9)) == 0:  # cut the file anywhere
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    return raw


# ---------------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------------

def one_line(msg: str) -> bool:
    return len(msg.splitlines()) == 1 and msg == msg.strip()


def check_case(folder: Path, files: set[str]) -> None:
    """The loader loads or refuses in one line; the CLI agrees, exit 0 or 2, no traceback."""
    STATS["cases"] += 1
    try:
        inst = load_instance(folder)
        inst.summary()
        outcome, msg = 0, None
    except InputError as exc:
        msg = str(exc)
        assert one_line(msg), repr(msg)
        assert msg.isprintable(), repr(msg)  # no control characters reach the terminal
        assert msg == exc.message()
        assert exc.file, msg
        # The message names the file first: the manifest, or a table as the manifest wrote it.
        assert msg.startswith(str(exc.file)), msg
        assert any(Path(str(exc.file)).name.lower().startswith(Path(f).stem)
                   for f in files | {"instance.toml"}) or exc.file == "instance.toml" \
            or "inst" in str(exc.file), msg
        outcome = 2
    result = CliRunner().invoke(main, ["validate", str(folder)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == outcome, (result.exit_code, outcome, result.output)
    if outcome == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0] == f"error: {msg}", result.output
        STATS["refused"] += 1
        STATS["messages"][msg] += 1
        STATS["outcomes"]["refused"] += 1
    else:
        assert result.output.startswith("instance "), result.output
        STATS["loaded"] += 1
        STATS["outcomes"]["loaded"] += 1


def fresh_copy(tmp: str) -> Path:
    folder = Path(tmp) / "inst"
    shutil.copytree(TINY, folder)
    return folder


@settings(FUZZ, max_examples=350)
@given(data=st.data(), table=st.sampled_from(TABLES),
       ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=3))
def test_corrupted_tables(data, table, ops):
    rows = read_rows(table)
    for op in ops:
        rows = apply_op(rows, op, data)
    fast = data.draw(st.booleans())  # half the cases through the pyarrow reader
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(optisite.tables, "FAST_CSV_BYTES", 0 if fast else 10**12):
        folder = fresh_copy(tmp)
        (folder / table).write_bytes(serialise(rows, data))
        check_case(folder, set(TABLES))


TOML_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e400", "inf", "nan", "-inf", '"20"', '"vingt"', "true", "[]",
                     "{}", "[1, 2]", '"../../etc/passwd"', '"/etc/passwd"', "1979-05-27", "1_000",
                     '""', '"EPSG:2154"', '"EPSG:4326"', '"drees2012"', "= =", '"', "0x10",
                     "9" * 400, '"\\u001b[2J"']),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=10).map(json.dumps),
)
MANIFEST_KEYS = ["coverage_minutes", "budget", "speed_kmh", "detour_factor", "travel_symmetric",
                 "cabinet_min_days", "cabinet_max_days", "centre_min_fte", "max_pairs", "apl_decay",
                 "funder_centre_fte", "unknown_param", "coverage minutes"]
TOP_KEYS = ["name", "crs", "supply_source", "description", "provenance", "tables", "surprise"]


@settings(FUZZ, max_examples=150)
@given(data=st.data(), kind=st.sampled_from(["parameter", "top", "table_path", "cut", "drop_line", "bytes"]))
def test_corrupted_manifest(data, kind):
    text = (TINY / "instance.toml").read_text(encoding="utf-8")
    if kind == "parameter":
        key = data.draw(st.sampled_from(MANIFEST_KEYS))
        text = text.replace("coverage_minutes = 15\n", "") + f"{key} = {data.draw(TOML_VALUES)}\n"
    elif kind == "top":
        key = data.draw(st.sampled_from(TOP_KEYS))
        text = f"{key} = {data.draw(TOML_VALUES)}\n" + "\n".join(
            line for line in text.splitlines() if not line.startswith(f"{key} ="))
    elif kind == "table_path":
        table = data.draw(st.sampled_from(["zones", "sites", "practices", "travel"]))
        value = data.draw(st.one_of(TOML_VALUES, st.sampled_from(
            ['"zones.csv"', '"./sites.csv"', '"sub/../zones.csv"', '"zones.CSV"', '"."', '"instance.toml"'])))
        text = re.sub(rf"^{table} = .*$", lambda _: f"{table} = {value}", text, flags=re.M)
    elif kind == "cut":
        text = text[: data.draw(st.integers(0, len(text)))]
    elif kind == "drop_line":
        lines = text.splitlines()
        del lines[data.draw(st.integers(0, len(lines) - 1))]
        text = "\n".join(lines)
    raw = text.encode("utf-8")
    if kind == "bytes":
        raw = data.draw(st.binary(max_size=64))
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_copy(tmp)
        (folder / "instance.toml").write_bytes(raw)
        check_case(folder, set(TABLES))


@settings(FUZZ, max_examples=60)
@given(table=st.sampled_from(TABLES), raw=st.binary(max_size=200))
def test_random_bytes_as_table(table, raw):
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_copy(tmp)
        (folder / table).write_bytes(raw)
        check_case(folder, set(TABLES))


@settings(FUZZ, max_examples=40)
@given(data=st.data(), fmt=st.sampled_from(["gpkg", "parquet"]))
def test_corrupted_geo_zones(data, fmt):
    """Zones written by geopandas with odd values, or the file cut short."""
    import geopandas as gpd
    import pandas as pd

    z = pd.read_csv(TINY / "zones.csv", dtype=str)
    col = data.draw(st.sampled_from(["zone_id", "name", "population"]))
    z.loc[data.draw(st.integers(0, len(z) - 1)), col] = data.draw(st.sampled_from(NASTY))
    x = pd.to_numeric(z.pop("lon"))
    y = pd.to_numeric(z.pop("lat"))
    if data.draw(st.booleans()):
        z["population"] = pd.to_numeric(z["population"], errors="coerce")  # a float column with NaN
    gdf = gpd.GeoDataFrame(z, geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_copy(tmp)
        name = f"zones.{fmt}"
        if fmt == "gpkg":
            gdf.to_file(folder / name, driver="GPKG")
        else:
            gdf.to_parquet(folder / name)
        if data.draw(st.integers(0, 3)) == 0:
            raw = (folder / name).read_bytes()
            (folder / name).write_bytes(raw[: data.draw(st.integers(0, len(raw)))])
        manifest = folder / "instance.toml"
        manifest.write_text(manifest.read_text().replace('"zones.csv"', f'"{name}"'))
        check_case(folder, set(TABLES) | {name})


# ---------------------------------------------------------------------------------
# manifests' parameter values, solved when they load (issue 17 item 7)
# ---------------------------------------------------------------------------------

def _extremes():
    """Values at, just inside and just outside each parameter's range, and absurd ones."""
    import dataclasses

    from optisite.parameters import Parameters

    out = ["0", "-0.0", "1e308", "-1e308", "1e-300", "5e-324", "1", "7", "53", "1441"]
    for f in dataclasses.fields(Parameters):
        lo, hi = f.metadata.get("minimum"), f.metadata.get("maximum")
        for v in (lo, hi):
            if v is not None:
                out += [repr(float(v)), repr(float(v) * (1 + 1e-9) + 1e-12), repr(float(v) * (1 - 1e-9) - 1e-12)]
    return sorted(set(out))


PARAMETER_VALUES = st.one_of(TOML_VALUES, st.sampled_from(_extremes()))


def _parameter_names():
    from optisite.parameters import Parameters

    return Parameters.names() + ["consultations_per_inhabitants", "time_limit", "Budget", "days per fte"]


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


@settings(FUZZ, max_examples=60)
@given(data=st.data(), n=st.integers(1, 3))
def test_manifest_parameter_values(data, n):
    """Any parameter at odd values: the manifest is refused in one line, or the instance loads and
    each model solves it (or says in one line why it cannot): never a traceback."""
    from optisite.errors import OptisiteError
    from optisite.pipeline import solve
    from optisite.models import names as model_names
    from optisite.solver import SolveOptions

    text = (TINY / "instance.toml").read_text(encoding="utf-8").split("[parameters]")[0]
    chosen = {data.draw(st.sampled_from(_parameter_names())): data.draw(PARAMETER_VALUES) for _ in range(n)}
    model = data.draw(st.sampled_from(list(model_names())))  # every draw before counting the case
    text += "[parameters]\n" + "".join(f"{toml_key(k)} = {v}\n" for k, v in chosen.items())
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_copy(tmp)
        (folder / "instance.toml").write_text(text, encoding="utf-8")
        kind = STATS["kinds"].setdefault("manifest parameters", Counter())
        kind["tried"] += 1
        before = STATS["loaded"]
        check_case(folder, set(TABLES))
        if STATS["loaded"] == before:
            kind["refused"] += 1
            return
        kind["loaded"] += 1
        inst = load_instance(folder)
        try:
            solve(inst, SolveOptions(model=model, time_limit=3, threads=1))
            kind["solved"] += 1
        except OptisiteError as exc:  # a user error or an infeasible setting: one line, no traceback
            assert one_line(str(exc)) and str(exc).isprintable(), repr(str(exc))
            kind["solve refused"] += 1
        except Exception:
            kind["tracebacks"] += 1
            raise


# ---------------------------------------------------------------------------------
# scenario files (issue 17 item 6)
# ---------------------------------------------------------------------------------

SCENARIO_TOP = ["name", "description", "model", "parameters", "options", "timelimit", "Model", "budget",
                "option", "seed"]
OPTION_KEYS = ["model", "time_limit", "gap", "threads", "seed", "open", "close", "time_limt", "Threads",
               "budget", "verbose", "force_open"]
OPTION_VALUES = st.one_of(
    TOML_VALUES, PARAMETER_VALUES,
    st.sampled_from(['"CS-B"', '["CS-B"]', '["CS-B", "CS-D"]', '["CS-B", "CS-B"]', '["CS-Z"]', '[1, 2]',
                     '[["CS-B"]]', '"coverage"', '"staffing"', '"apl"', '"Coverage"', "2147483648", "1024",
                     "1025", "0.1", "0.09", "10000000", "1e7", "1.0", "-1", "1e-4", "50", '"fast"',
                     '{ a = 1 }', '["CDS-E"]', '"2A004"']),
    st.lists(st.sampled_from(["CS-B", "CS-D", "CS-F", "CDS-E", "cs-b", "", " ", "01001"]), max_size=4)
    .map(lambda ids: "[" + ", ".join(json.dumps(i) for i in ids) + "]"),
)


_TINY_INSTANCE: list = []


def tiny_instance():
    """The tiny instance, loaded once (apply never changes it)."""
    if not _TINY_INSTANCE:
        _TINY_INSTANCE.append(load_instance(TINY))
    return _TINY_INSTANCE[0]


def scenario_text(data) -> bytes:
    style = data.draw(st.sampled_from(["tables", "tables", "tables", "flat", "cut", "bytes"]))
    if style == "bytes":
        return data.draw(st.binary(max_size=80))
    lines = []
    for _ in range(data.draw(st.integers(0, 2))):
        key = data.draw(st.sampled_from(SCENARIO_TOP))
        lines.append(f"{toml_key(key)} = {data.draw(OPTION_VALUES)}")
    if style == "flat":  # dotted keys instead of tables
        for _ in range(data.draw(st.integers(1, 3))):
            table = data.draw(st.sampled_from(["parameters", "options"]))
            keys = _parameter_names() if table == "parameters" else OPTION_KEYS
            lines.append(f"{table}.{toml_key(data.draw(st.sampled_from(keys)))} = {data.draw(OPTION_VALUES)}")
    else:
        for table, keys in (("parameters", _parameter_names()), ("options", OPTION_KEYS)):
            if data.draw(st.booleans()):
                lines.append(f"[{table}]")
                for _ in range(data.draw(st.integers(0, 3))):
                    lines.append(f"{toml_key(data.draw(st.sampled_from(keys)))} = {data.draw(OPTION_VALUES)}")
    text = "\n".join(lines) + "\n"
    if style == "cut":
        text = text[: data.draw(st.integers(0, len(text)))]
    return text.encode("utf-8")


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_corrupted_scenario(data):
    """A scenario is applied or refused in one line naming the file; `optisite solve` agrees (0 or 2)."""
    import click

    import optisite.pipeline
    from optisite.scenario import apply, read_scenario

    raw = scenario_text(data)
    kind = STATS["kinds"].setdefault("scenario files", Counter())
    kind["tried"] += 1  # after every draw: a case hypothesis abandons mid-draw is not counted
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.toml"
        path.write_bytes(raw)
        try:
            inst, options = apply(tiny_instance(), read_scenario(path))
            outcome, msg = 0, None
            assert options.model and options.time_limit > 0 and 0 <= options.gap <= 1
            assert options.threads is None or options.threads >= 1
            assert all(isinstance(s, str) and s in inst.sites.index for s in options.force_open)
        except InputError as exc:
            msg = str(exc)
            assert one_line(msg) and msg.isprintable(), repr(msg)
            assert exc.file == str(path) and msg.startswith(str(path)), msg
            outcome = 2
        except Exception:
            kind["tracebacks"] += 1
            raise

        def no_solve(*_args, **_kw):  # the scenario was accepted: stop before the solver
            raise click.exceptions.Exit(0)

        with mock.patch.object(optisite.pipeline, "solve", no_solve):
            result = CliRunner().invoke(main, ["solve", str(TINY), "--quiet", "--scenario", str(path),
                                               "--out", str(Path(tmp) / "out")])
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == outcome, (result.exit_code, outcome, result.output)
        if outcome == 2:
            assert [line for line in result.output.splitlines() if line.strip()] == [f"error: {msg}"]
            kind["refused"] += 1
        else:
            kind["accepted"] += 1


def problem_template(msg: str) -> str:
    """A message with its quoted values and numbers blanked: the kind of problem."""
    text = re.sub(r"'[^']*'", "'…'", msg.split(". Fix:")[0])
    text = re.sub(r"\(.*\)", "(…)", text)
    return re.sub(r"-?\d+(?:[.,]\d+)*(?:e[+-]?\d+)?", "N", text)


def test_zz_report(request):
    """Print (and optionally save) how many cases ran and how many distinct messages."""
    if STATS["cases"] == 0:
        pytest.skip("the fuzz tests did not run in this session")
    templates = Counter(problem_template(m) for m in STATS["messages"].elements())
    report = {
        "cases": STATS["cases"],
        "loaded": STATS["loaded"],
        "refused": STATS["refused"],
        "distinct_messages": len(STATS["messages"]),
        "distinct_problem_kinds": len(templates),
        "by_corpus": {name: dict(counts) for name, counts in STATS["kinds"].items()},
    }
    print("fuzz loader:", json.dumps(report))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # the headline is shown even when output is captured
        with capture.global_and_fixture_disabled():
            print("\nfuzz loader: " + json.dumps(report))
    for template, count in templates.most_common():
        print(f"  {count:4d}  {template}")
    if os.environ.get("OPTISITE_FUZZ_STATS"):
        Path(os.environ["OPTISITE_FUZZ_STATS"]).write_text(
            json.dumps({**report, "problem_kinds": dict(templates.most_common())}, indent=1, ensure_ascii=False))
    assert STATS["loaded"] + STATS["refused"] == STATS["cases"]
    # The corruptions are varied enough to exercise many distinct checks, and some still load.
    assert STATS["loaded"] > 0 and STATS["refused"] > 0
    assert len(templates) >= 15
    for name, counts in STATS["kinds"].items():  # the widened corpora: both outcomes, no traceback
        assert counts["tracebacks"] == 0, name
        assert counts["refused"] > 0 and counts["tried"] == counts["refused"] + counts["accepted"] + counts["loaded"]
        assert counts["accepted"] + counts["loaded"] > 0, name
