"""Zonage on the report's map (issue 15 item 5): communes classed ZIP or ZAC are hatched (or
ringed, without polygons) with a legend line; nothing changes when the zones carry no
zonage column."""

from __future__ import annotations

import pandas as pd

from optisite.instance import instance_from_frames
from optisite.pipeline import SolveOptions, solve
from optisite.report import _zonage_handles, map_png, render_report


def frames(zonage=True):
    zones = pd.DataFrame({"zone_id": ["A", "B", "C"], "population": [800, 500, 300],
                          "lon": [2.0, 2.2, 2.4], "lat": [47.0, 47.1, 47.0]})
    if zonage:
        zones["zonage"] = ["ZIP", "ZAC", "none"]
    sites = pd.DataFrame({"site_id": ["S-A", "S-C"], "kind": "cabinet_secondaire", "zone_id": ["A", "C"]})
    travel = pd.DataFrame({"from_id": list("AABBCC"), "to_id": list("ABBCCA"),
                           "minutes": [0.0, 30.0, 0.0, 30.0, 0.0, 30.0]})
    return zones, sites, travel


def instance(zonage=True):
    zones, sites, travel = frames(zonage)
    return instance_from_frames(zones, sites, None, travel, parameters={"budget": 60_000, "coverage_minutes": 10})


def plan(inst):
    return solve(inst, SolveOptions(model="coverage", time_limit=60, threads=1))


def test_report_with_zonage_shows_the_legend_and_hatches_the_map():
    inst = instance()
    sol = plan(inst)
    html = render_report(inst, sol)
    assert 'id="zonage-legend"' in html
    assert "classed <span class=\"zonage-ZIP\">ZIP</span>" in html and "(points: a square for ZIP" in html
    labels = [h.get_label() for h in _zonage_handles(inst.zones["zonage"])]
    assert labels == ["ZIP commune (zonage) (1)", "ZAC commune (zonage) (1)"]
    bare = instance(zonage=False)
    assert map_png(inst, sol) != map_png(bare, plan(bare))  # the overlay and its legend are drawn


def test_report_without_zonage_is_unchanged():
    bare = instance(zonage=False)
    html = render_report(bare, plan(bare))
    assert 'id="zonage-legend"' not in html and "zonage-" not in html.split("</style>")[1]
    assert _zonage_handles(None) == []
