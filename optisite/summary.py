"""The summary of a solution: the typed contract of ``solution.json``.

``models/outputs.md`` lists every key; ``tests/test_model_docs.py`` checks the
document against a written file both ways. :class:`Summary` reads like the mapping it
is serialised to (``summary["status"]``), so readers of a written folder (plain dicts
from ``read_solution``) and of a fresh solve share one code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Iterator

OPTIONAL = ("apl", "check", "years", "scenarios", "robust")  # present only when computed


@dataclass
class Summary(Mapping):
    """Every key of ``solution.json``, typed."""

    model: str
    status: str  # optimal, time_limit, interrupted, no_plan
    objective: float | None
    bound: float | None
    gap: float | None
    objective_unit: str
    result: dict[str, Any]  # ResultMeaning.to_dict(): how tables, checker and report read the plan
    bound_method: str  # which method proved ``bound``
    population_total: float
    population_covered: float
    population_uncovered: float
    population_covered_before: float
    population_uncovered_before: float
    cost_total: float
    cost_by_item: dict[str, float]
    cost_by_funder: dict[str, float]
    budget: float
    open_sites: list[str]
    sites_opened_by_kind: dict[str, int]
    physician_days_per_week: float
    salaried_fte: float
    parameters: dict[str, Any]
    options: dict[str, Any]
    instance: dict[str, Any]
    solver: dict[str, Any]
    timings: dict[str, float]
    versions: dict[str, str]
    warnings: list[str]
    command: str
    apl: dict[str, Any] | None = None
    check: dict[str, Any] | None = None
    years: list[dict[str, Any]] | None = None  # a multi-year plan: each year's figures (result.years)
    scenarios: list[dict[str, Any]] | None = None  # a robust plan: each scenario's figures (result.scenarios)
    robust: dict[str, Any] | None = None  # a robust plan: mode, year, worst and expected values

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.keys()}

    # Mapping interface -------------------------------------------------------------
    def keys(self):  # type: ignore[override]
        return [f.name for f in fields(self) if not f.name.startswith("_")
                and not (f.name in OPTIONAL and getattr(self, f.name) is None)]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key not in {f.name for f in fields(self)}:
            raise KeyError(f"solution.json has no key '{key}' (models/outputs.md)")
        setattr(self, key, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    @classmethod
    def key_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if not f.name.startswith("_")]
