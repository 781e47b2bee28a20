"""report.html: rendered in headless Chromium, numbers in the DOM equal solution.json, data escaped."""

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.instance import load_instance
from optisite.report import render_report

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "instances" / "nievre-58"  # a shipped département with commune polygons
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPT = "<script>alert(1)</script>"


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: install the Debian package chromium "
                    "(apt-get install -y chromium); .ci/run does it when absent")
    return exe


def browse(html_file: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
                               html_file.resolve().as_uri()],
                              capture_output=True, timeout=120, cwd=html_file.parent)


class _Values(HTMLParser):
    """id -> data-value of every element carrying both."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self.images: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a and "data-value" in a:
            self.values[a["id"]] = a["data-value"]
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "script":
            self.scripts += 1


def dom_values(html: str) -> _Values:
    p = _Values()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def shipped_solution(tmp_path_factory):
    assert (SHIPPED / "instance.toml").is_file(), "the shipped département instances/nievre-58 is missing"
    out = tmp_path_factory.mktemp("report") / "nievre-coverage"
    r = CliRunner().invoke(main, ["solve", str(SHIPPED), "--model", "coverage", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return out


NUMBERS = {  # DOM id -> solution.json key
    "population-total": "population_total",
    "population-uncovered-before": "population_uncovered_before",
    "population-uncovered": "population_uncovered",
    "population-covered": "population_covered",
    "cost-total": "cost_total",
    "budget": "budget",
    "objective": "objective",
    "bound": "bound",
    "gap": "gap",
}


def test_report_renders_in_chromium_with_the_numbers_of_solution_json(shipped_solution):
    html_file = shipped_solution / "report.html"
    assert html_file.is_file()
    summary = json.loads((shipped_solution / "solution.json").read_text(encoding="utf-8"))

    shot = shipped_solution.parent / "report.png"
    r = browse(html_file, f"--screenshot={shot}", "--window-size=1280,2000")
    assert r.returncode == 0 and shot.is_file(), r.stderr.decode(errors="replace")[-2000:]
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert float(np.var(pixels[..., :3])) > 1e-3, "the screenshot is blank"
    # the map (coloured polygons) is on screen: many distinct colours, not just text on white
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200

    r = browse(html_file, "--dump-dom")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    dom = dom_values(r.stdout.decode("utf-8"))
    for dom_id, key in NUMBERS.items():
        assert dom_id in dom.values, dom_id
        assert float(dom.values[dom_id]) == summary[key], (dom_id, dom.values[dom_id], summary[key])
    assert int(dom.values["sites-opened"]) == len(summary["open_sites"])
    assert dom.values["status"] == summary["status"]
    assert dom.values["model"] == summary["model"] == "coverage"
    assert dom.values["check-ok"] == "true" and summary["check"]["ok"] is True
    assert dom.values["fingerprint"] == summary["instance"]["fingerprint"]
    assert dom.values["supply-source"] == "calibrated"  # the shipped Nièvre since issue 16
    assert "calibrated-note" in r.stdout.decode("utf-8") and "illustrative-warning" not in r.stdout.decode("utf-8")
    # self-contained: the one image is an inline PNG, no script, no external reference
    assert dom.images and all(src.startswith("data:image/png;base64,") for src in dom.images)
    assert dom.scripts == 0
    text = html_file.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text


def test_report_uses_commune_polygons_and_shows_uncovered_communes(shipped_solution):
    inst = load_instance(SHIPPED)
    assert inst.geometry is not None
    text = (shipped_solution / "report.html").read_text(encoding="utf-8")
    assert "Commune boundaries from the instance" in text
    summary = json.loads((shipped_solution / "solution.json").read_text(encoding="utf-8"))
    for sid in summary["open_sites"]:
        assert f'data-site="{sid}"' in text


def test_report_command_rerenders_only_report_html(shipped_solution, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(shipped_solution, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "report.html"}
    (folder / "report.html").unlink()
    r = CliRunner().invoke(main, ["report", str(folder), str(SHIPPED)])
    assert r.exit_code == 0, r.output
    assert (folder / "report.html").is_file()
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "report.html"}
    assert after == before
    # no temporary left behind (.optisite is the marker of a folder optisite wrote)
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != ".optisite"]


def test_report_refuses_another_instance(shipped_solution):
    r = CliRunner().invoke(main, ["report", str(shipped_solution), str(ROOT / "instances" / "tiny")])
    assert r.exit_code == 2
    assert "fingerprint" in r.output


def test_commune_name_with_a_script_tag_is_escaped(tiny_copy, tmp_path):
    zones = tiny_copy / "zones.csv"
    text = zones.read_text(encoding="utf-8")
    assert "Village E" in text  # the commune that stays uncovered: it appears in the tables
    zones.write_text(text.replace("Village E", SCRIPT), encoding="utf-8")
    manifest = tiny_copy / "instance.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        'name = "Tiny hand-made test instance"', f'name = "{SCRIPT}"'), encoding="utf-8")
    out = tmp_path / "sol"
    r = CliRunner().invoke(main, ["solve", str(tiny_copy), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert SCRIPT not in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    zones_csv = (out / "zones.csv").read_text(encoding="utf-8")
    assert SCRIPT in zones_csv  # the data kept the name; only the HTML escapes it
    # the escaped name shows as text in a browser, and nothing runs
    r = browse(out / "report.html", "--dump-dom")
    assert r.returncode == 0
    assert dom_values(r.stdout.decode("utf-8")).scripts == 0


def test_tiny_report_draws_points_and_matches_summary(tiny_copy, tmp_path):
    from optisite.pipeline import solve
    from optisite.solver import SolveOptions

    inst = load_instance(tiny_copy)
    sol = solve(inst, SolveOptions(model="staffing"))
    html = render_report(inst, sol)
    dom = dom_values(html)
    assert float(dom.values["population-uncovered"]) == sol.summary["population_uncovered"]
    assert float(dom.values["cost-total"]) == sol.summary["cost_total"]
    assert "each zone is drawn as a point" in html
    assert "illustrative-warning" not in html
    assert 'id="schedule-table"' in html and 'id="apl-table"' in html


def _visible_text_outside_details(html: str) -> str:
    """The page's text a person reads before opening the collapsed provenance section."""
    import re

    html = re.sub(r"<details.*?</details>", "", html, flags=re.S)
    html = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]*>", " ", html)  # tags (with their data-value and title attributes) dropped


def test_report_leads_with_status_gap_gains_losses_and_cost(shipped_solution):
    """The headline (before the map) states the status, the gap, who gains and loses, the cost;
    its numbers equal what zones.csv and solution.json say."""
    import pandas as pd

    html_file = shipped_solution / "report.html"
    summary = json.loads((shipped_solution / "solution.json").read_text(encoding="utf-8"))
    r = browse(html_file, "--dump-dom")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    html = r.stdout.decode("utf-8")
    dom = dom_values(html)
    assert dom.values["status-words"] == summary["status"]
    assert float(dom.values["gap-words"]) == summary["gap"]
    z = pd.read_csv(shipped_solution / "zones.csv", dtype={"zone_id": str})
    # the planning territory only: neighbours across the border are not counted (models/instances.md)
    from optisite import load_instance

    zin = load_instance(SHIPPED).zones
    if "planning" in zin.columns:
        z = z[z["zone_id"].map(zin["planning"]) == 1]
    delta = z["uncovered_before"] - z["uncovered_after"]
    assert int(dom.values["communes-gaining"]) == int((delta > 0.5).sum()) > 0
    assert float(dom.values["inhabitants-gaining"]) == pytest.approx(float(delta[delta > 0.5].sum()), rel=1e-9)
    assert int(dom.values["communes-losing"]) == int((delta < -0.5).sum())
    assert float(dom.values["inhabitants-losing"]) == pytest.approx(float(-delta[delta < -0.5].sum()), abs=1e-6)
    assert dom.values["cost-words"] == "true" and summary["result"]["budgeted"] is True
    # the lead comes before the map and the tables
    assert html.index('id="status-words"') < html.index('id="cost-words"') < html.index('id="map"')
    words = {"optimal": "Optimal", "time_limit": "Stopped at the time limit", "interrupted": "Interrupted"}
    assert words[summary["status"]] in html
    # raw provenance is collapsed; every number read outside it is formatted (no '3799000.0')
    import re

    assert re.search(r"<details id=\"provenance-details\">", html) and "<details open" not in html
    visible = _visible_text_outside_details(html)
    raw = re.findall(r"(?<![\d\u202f.,])\d{4,}\.\d+", visible)
    assert not raw, raw[:5]
    assert "budget" in html[html.index("<details"):]  # the parameters are inside the details
    # the parameters changed from their defaults are named outside the collapsed section
    from optisite.parameters import Parameters

    defaults = {d["name"]: d["default"] for d in Parameters.describe()}
    changed = [k for k, v in summary["parameters"].items() if k in defaults and defaults[k] != v]
    assert int(dom.values["parameters-changed"]) == len(changed)
    for k in changed:
        assert k in visible, k


def test_report_names_communes_that_lose_access(tiny_copy):
    """A commune whose inhabitants without access grow is counted, named and marked in the lead."""
    from optisite.pipeline import solve
    from optisite.solver import SolveOptions

    inst = load_instance(tiny_copy)
    sol = solve(inst, SolveOptions(model="staffing"))
    z = sol.zones
    served_before = z[z["covered_before"].astype(float) > 0.5]
    i = int(served_before["population"].astype(float).idxmax())
    z.loc[i, "covered_after"] = 0.0
    z.loc[i, "uncovered_after"] = float(z.loc[i, "population"])
    lost = float(z.loc[i, "uncovered_after"] - z.loc[i, "uncovered_before"])
    assert lost > 0.5
    html = render_report(inst, sol)
    dom = dom_values(html)
    assert int(dom.values["communes-losing"]) >= 1
    assert float(dom.values["inhabitants-losing"]) >= lost - 1e-9
    lead = html[html.index('id="lead"'):html.index('id="map"')]
    assert str(z.loc[i, "name"]) in lead
    assert "lose access" in lead


def test_report_of_an_unbudgeted_model_says_the_budget_does_not_bind(tiny_copy):
    """For a model whose result is not budgeted (lscp), the cost is the cost of full coverage."""
    from optisite.models import get, names
    from optisite.pipeline import solve
    from optisite.solver import SolveOptions

    unbudgeted = [n for n in names() if not get(n).result.budgeted]
    assert unbudgeted, "no registered model declares budgeted = false"
    inst = load_instance(tiny_copy)
    sol = solve(inst, SolveOptions(model=unbudgeted[0]))
    html = render_report(inst, sol)
    dom = dom_values(html)
    assert dom.values["cost-words"] == "false"
    assert "The budget does not bind this model" in html
    assert "Full coverage costs" in html


def test_numbers_never_read_minus_zero():
    """A solver's -0.0 objective (an optimal plan reaching everyone) read '-0' in the report."""
    from optisite.report import fmt_num

    assert fmt_num(-0.0) == "0"
    assert fmt_num(-0.3) == "0"
    assert fmt_num(-1234.6) == "-1\u202f235"
    assert fmt_num(-0.04, 1) == "0.0"


def test_cost_words_say_how_sure_the_cost_is():
    """The headline says whether the cost was proven least for the plan's value, and, when
    the cost stage stopped at its limit, how much cheaper a plan of the same value could be."""
    from optisite.report import cost_words

    stage = {"name": "cost", "status": "time_limit", "objective": 701_000.0, "bound": 649_500.0,
             "has_solution": True}
    S = {"cost_total": 701_000.0, "solver": {"stages": [{"name": "uncovered", "status": "optimal"}, stage]}}
    words = cost_words(S)
    assert "649\u202f500\u202fEUR" in words and "7.3\u202f%" in words and "not proven" in words
    S["solver"]["stages"][1] = {**stage, "status": "optimal", "bound": 701_000.0}
    assert cost_words(S).startswith("Least cost proven")
    S["solver"]["stages"] = S["solver"]["stages"][:1]  # no cost stage (coverage-only run)
    assert cost_words(S) is None
    S["solver"]["stages"] = [stage]  # cost is the first objective (lscp): the gap sentence says it
    assert cost_words(S) is None
