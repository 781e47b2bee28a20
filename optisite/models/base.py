"""The model protocol and its registry: what a model declares, and how the pipeline finds it.

A model is one :class:`Model` subclass in ``optisite/models/``, registered with
:func:`register`. It declares how it prepares its data (with its own checks), how it
builds the Pyomo model, its objectives in lexicographic order, its start and HiGHS
options, how its decisions read back into plain tables, its post-solve stages, and
what its result means (:class:`ResultMeaning`) for the tables, the checker and the
report. ``pipeline.py``, ``solution.py``, ``checker.py``, ``report.py`` and the CLI
dispatch on these declarations, never on a model's name.

Adding a model: one module with one subclass, its document ``models/<name>.md``, one
import line in ``optisite/models/__init__.py``, and its tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar

import pandas as pd

from ..deadline import Deadline
from ..errors import InfeasibleError, InputError
from ..instance import Instance

# ---------------------------------------------------------------------------------
# What a result means
# ---------------------------------------------------------------------------------

ACCESS_RULES = ("reach", "flows")
OBJECTIVES = ("weighted_uncovered", "population_under_apl", "cost_total")


@dataclass(frozen=True)
class ResultMeaning:
    """How the tables, the checker and the report read a model's plan (``result`` in
    ``solution.json``).

    * ``access``: ``reach``, a zone has access iff an existing practice or an opened
      site is within ``coverage_minutes`` (0/1, no flows); ``flows``, capacity-limited
      demand flows (``assignment.csv``) give each zone's served share.
    * ``objective``: what ``objective`` in ``solution.json`` equals.
    * ``capacities``: sites and practices carry capacities (consultations a year).
    * ``apl``: APL before and after is computed for the plan.
    * ``full_coverage``: every zone that some practice or candidate site reaches must be covered.
    * ``budgeted``: the plan's cost must stay within the budget.
    * ``years``: a multi-year plan: the tables are long (a ``year`` column), ``solution.json``
      has a ``years`` block, and the checker re-derives every year (``optisite/checker_years.py``).
    * ``scenarios``: a robust plan (one plan, several retirement scenarios): practices, assignment
      and zones are long (a ``scenario`` column), ``solution.json`` has ``scenarios`` and ``robust``
      blocks, and the checker re-derives every scenario (``optisite/checker_scenarios.py``).
    """

    access: str
    objective: str
    capacities: bool
    apl: bool
    full_coverage: bool = False
    budgeted: bool = True
    years: bool = False
    scenarios: bool = False

    def __post_init__(self):
        if self.access not in ACCESS_RULES or self.objective not in OBJECTIVES:
            raise ValueError(f"unknown result meaning {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------
# Decisions and objectives
# ---------------------------------------------------------------------------------

@dataclass
class Decisions:
    """A plan as plain data, no Pyomo: what ``solution.derive`` turns into tables."""

    open_sites: list[str]
    days: pd.DataFrame | None = None  # practice_id, site_id, days_per_week (int)
    fte: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # centre id -> FTE
    flows: pd.DataFrame | None = None  # zone_id, source_id, consultations (access "flows")

    @classmethod
    def nothing(cls) -> "Decisions":
        """Open nothing: the existing supply alone."""
        return cls(open_sites=[], days=pd.DataFrame(columns=["practice_id", "site_id", "days_per_week"]),
                   flows=None)


@dataclass(frozen=True)
class Objective:
    """One lexicographic objective (minimised): ``expr`` of the built model, in model units;
    ``scale`` converts the solver's value into the reported unit; ``floor``, a value it can
    never go below (people or euros: 0), so that a start reaching it is proven optimal
    without a search (``models/solving.md``, the stages)."""

    name: str
    expr: Any
    scale: float = 1.0
    floor: float | None = None


# ---------------------------------------------------------------------------------
# What a model gets while it runs
# ---------------------------------------------------------------------------------

@dataclass
class Context:
    """Everything a model's hooks may use during one solve: the instance, the options,
    the one deadline, the solver runner and the progress callback. Pair tables are
    computed once, on first use."""

    instance: Instance
    options: Any  # solver.SolveOptions
    deadline: Deadline
    solver: Any  # solver.StageSolver
    say: Callable[[str], None] = lambda _msg: None
    warnings: list[str] = field(default_factory=list)
    baseline: pd.DataFrame | None = None  # demand flows of the existing supply alone (access "flows")
    flows_final: bool = False  # the search ended with its own canonical flows stage
    extra_stages: list = field(default_factory=list)  # post-solve StageResults (polish)

    @cached_property
    def pairs(self) -> pd.DataFrame:
        """Zone -> source pairs within the coverage cutoff (``reach.coverage_pairs``)."""
        from ..reach import coverage_pairs

        return coverage_pairs(self.instance)

    @cached_property
    def links(self) -> pd.DataFrame:
        """Practice -> cabinet links within the GP travel limit (``reach.staffing_pairs``)."""
        from ..reach import staffing_pairs

        return staffing_pairs(self.instance)


@dataclass
class Finish:
    """What a model adds to the summary once the plan's tables exist."""

    objective: float | None = None  # replaces the solver's objective when the plan's true value differs
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------

class Model:
    """Base class of every model. Subclasses set the class attributes and implement
    ``prepare``, ``build``, ``objectives`` and ``decisions``; the other hooks have
    defaults that do nothing."""

    name: ClassVar[str]
    title: ClassVar[str]  # one line, for ``--help`` and the report
    objective_unit: ClassVar[str]
    result: ClassVar[ResultMeaning]
    document: ClassVar[str]  # models/<name>.md


    # -- data and model ------------------------------------------------------------
    def prepare(self, ctx: Context) -> Any:
        """The model's data, independent of Pyomo; refuses settings that cannot hold."""
        raise NotImplementedError

    def build(self, data: Any):
        """The Pyomo model (no objective: the solver adds the declared ones)."""
        raise NotImplementedError

    def describe(self, data: Any) -> str:
        """One progress line saying what was built."""
        return f"building {self.name} model"

    def reductions(self, data: Any, m) -> dict:
        """Sizes of what preparation left out (reported under ``solver.reductions``)."""
        return {}

    def objectives(self, m) -> list[Objective]:
        """Objectives in lexicographic order, each held at its optimum for the next."""
        raise NotImplementedError

    # -- solving -----------------------------------------------------------------------
    def highs_options(self, m) -> tuple[dict, str | None]:
        """Model-specific HiGHS options, and a warning for the report when one matters."""
        return {}, None

    def start(self, ctx: Context, data: Any, m) -> list:
        """Write a MIP start into ``m`` (variables' values); returns its StageResults.
        An empty list means no start."""
        return []

    def decisions(self, ctx: Context, data: Any, m) -> Decisions:
        """The solved model's plan as plain tables."""
        raise NotImplementedError

    #: Share of the time left after the start that the pipeline keeps for :meth:`bound`
    #: (the main stages are capped at the rest), when at least ``bound_share_from_s``
    #: seconds are left. 0: the hook only gets what the stages leave.
    bound_share: ClassVar[float] = 0.0
    bound_share_from_s: ClassVar[float] = 0.0

    def bound(self, ctx: Context, data: Any, m, stages: list) -> tuple[float, str] | None:
        """A lower bound on the first objective proved another way than HiGHS's search on
        the model as built, and the method's name; ``None`` when there is none. Called
        when the first stage stopped before proving optimality and time is left; ``m``
        holds the plan (restore it if the hook solves on it); StageResults go to
        ``ctx.extra_stages``. The value must be valid: never above the true optimum."""
        return None

    def polish(self, ctx: Context, data: Any, decisions: Decisions) -> Decisions:
        """Post-solve stages on the plan (for example the demand flows for fixed staffing)."""
        return decisions

    def fallback(self, ctx: Context, data: Any) -> tuple[Decisions, str]:
        """The plan returned when the search found none, and its description: by default
        open nothing (the status quo, never worse than itself)."""
        return Decisions.nothing(), "the existing supply alone (nothing opened)"

    def baseline_flows(self, ctx: Context, data: Any) -> pd.DataFrame | None:
        """Demand flows of the existing supply alone (access ``flows`` only)."""
        return None

    def finish(self, ctx: Context, data: Any, tables: dict, summary: dict) -> Finish:
        """Corrections once the tables and the APL exist. By default the objective is the
        reported plan's own value recomputed from its tables: after a time-limited first
        stage, the later stages and the polish may have improved on the incumbent."""
        from ..solution import plan_objective

        if summary.get("status") == "optimal":
            return Finish()  # the proven optimum: the solver's value, exact to its tolerances
        return Finish(objective=plan_objective(self.result, ctx.instance, tables, summary.get("apl")))

    def variant(self, parameters) -> "Model":
        """The model object that solves with these parameters: itself, or a form of it the
        parameters ask for (the staffing model's robust form when ``robust_scenarios`` names
        scenarios). A model without a robust form refuses robust scenarios (exit 2)."""
        if getattr(parameters, "robust_scenarios", "off") != "off":
            raise InputError(f"the {self.name} model has no robust form (robust_scenarios "
                             f"'{parameters.robust_scenarios}')", column="--robust",
                             fix="use --model staffing with --robust, or leave robust_scenarios off")
        return self

    def __repr__(self) -> str:
        return f"<model {self.name}: {self.title}>"


# ---------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------

_REGISTRY: dict[str, Model] = {}


def register(cls: type[Model]) -> type[Model]:
    """Class decorator: make a model available by its name (CLI choices, scenarios)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"model '{cls.name}' registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> tuple[str, ...]:
    """Registered model names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Model:
    """The registered model called ``name``; a user error otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model '{name}'", column="--model", fix="use " + ", ".join(_REGISTRY)) from None


# ---------------------------------------------------------------------------------
# Rules shared by models
# ---------------------------------------------------------------------------------

def check_budget(minimum_costs: pd.Series, forced: list[str], budget: float, *, what: str = "cheapest option",
                 unit: str = "EUR/year", unusable: str | None = None) -> None:
    """The one budget rule of every budgeted model.

    Forced-open sites must fit in the budget (else infeasible, exit 3); a positive
    budget below the cheapest usable option opens nothing and is almost always a unit
    mistake (else a user error, exit 2). ``minimum_costs``: cheapest annual cost of
    opening each usable site. ``unusable``: why a kind of site cannot be used at all
    (said instead of suspecting the budget's unit when that is the cause).
    """
    forced = [s for s in forced if s in minimum_costs.index]
    need = float(minimum_costs.loc[forced].sum()) if forced else 0.0
    if need > budget * (1 + 1e-9) + 1e-6:
        raise InfeasibleError(
            f"the forced-open sites {', '.join(forced)} cost at least {need:,.0f} {unit}, above the "
            f"budget of {budget:,.0f} {unit} (constraint 'budget'): raise --budget or open fewer sites")
    if unusable and len(minimum_costs) and 0 < budget < float(minimum_costs.min()) - 1e-6:
        rest = (f", and the budget of {budget:,.0f} {unit} is below the cheapest other option "
                f"({minimum_costs.idxmin()}: {minimum_costs.min():,.0f} {unit})")
        raise InputError(unusable + rest, column="parameters",
                         fix="raise the parameter named, or give --budget 0 to evaluate the existing supply alone")
    if len(minimum_costs) and 0 < budget < float(minimum_costs.min()) - 1e-6:
        raise InputError(
            f"budget {budget:,.0f} {unit} is below the {what} "
            f"({minimum_costs.idxmin()}: {minimum_costs.min():,.0f} {unit}), so nothing could be opened",
            column="budget",
            fix="raise the budget (is it in EUR/year, not thousands?) or give --budget 0 to evaluate "
                "the existing supply alone")
