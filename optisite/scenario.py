"""Scenario files and command-line overrides: what to change on an instance before a solve.

A scenario is a TOML file (format in ``models/scenarios.md``) with optional ``name``,
``description``, a ``[parameters]`` table (any field of :class:`~optisite.parameters.Parameters`)
and an ``[options]`` table (model, time limit, gap, threads, seed, sites forced open or
closed). :func:`read_scenario` checks every key, type and range without needing the
instance; :func:`apply` layers the scenario and then the command line (``--budget``,
``--set``, ``--time-limit`` ...) on an instance and returns it with its
:class:`~optisite.solver.SolveOptions`. A notebook calls the same two functions as
``optisite solve``::

    from optisite.instance import load_instance
    from optisite.scenario import apply, read_scenario

    inst, options = apply(load_instance("instances/nievre-58"), read_scenario("tight.toml"),
                          {"budget": 500_000, "time_limit": 60})
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError
from .parameters import Parameters

TOP_KEYS = ("name", "description", "model", "parameters", "options")

# Every [options] key, in the order the documentation lists them, and the command-line
# option it mirrors; their defaults are SolveOptions' own (see option_defaults).
OPTION_KEYS = ("model", "time_limit", "gap", "threads", "seed", "open", "close")
OPTION_FLAGS = {"model": "--model", "time_limit": "--time-limit", "gap": "--gap", "threads": "--threads",
                "seed": "--seed", "open": "--open", "close": "--close"}
# The Cour des comptes' levers (optisite/levers.py): parameters, so a scenario sets them under
# [parameters] like any other; listed here for the documentation's own table (models/scenarios.md).
LEVERS = ("zonage_restrict", "max_new_salaried_fte", "funder_envelopes", "presence_unit")
# A robust plan (optisite/robust.py): parameters too, mirrored by --robust, --robust-mode and
# --robust-year; robust_scenarios is checked when read (known scenario names, weights >= 0).
ROBUST = ("robust_scenarios", "robust_mode", "robust_year")
TIME_LIMIT_RANGE = (0.1, 1e7)  # seconds: at least what a model build needs, at most about 115 days
GAP_RANGE = (0.0, 1.0)  # relative MIP gap, a fraction
THREADS_RANGE = (1, 1024)
SEED_RANGE = (0, 2_147_483_647)  # HiGHS random_seed


def models() -> tuple[str, ...]:
    """The model names a scenario may ask for: the same list as ``optisite solve --model``."""
    from .models import names

    return tuple(names())


def option_defaults() -> dict[str, Any]:
    """Each [options] key's default: the solver's (``SolveOptions``), read, never copied."""
    from .solver import SolveOptions

    d = SolveOptions()
    return {"model": d.model, "time_limit": d.time_limit, "gap": d.gap, "threads": d.threads, "seed": d.seed,
            "open": tuple(d.force_open), "close": tuple(d.force_closed)}


@dataclass(frozen=True)
class Scenario:
    """A checked scenario file: parameter overrides and solve options, as the file gave them."""

    file: str = "scenario"  # how messages name it
    name: str | None = None
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)  # checked names and values
    options: Mapping[str, Any] = field(default_factory=dict)  # checked [options] given in the file

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name, "description": self.description,
                "parameters": dict(self.parameters),
                "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}}


# ---------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------

def read_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every mistake is one line naming the file and the key."""
    path = Path(path)
    label = str(path)
    if path.exists() and not path.is_file():  # a folder, or a pipe that would block the read
        raise InputError("not a regular file", file=label, fix="give the path of a TOML file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=label, fix="save the scenario as UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read the scenario ({exc.strerror or type(exc).__name__})", file=label,
                         fix="give the path of a readable TOML file") from None
    return parse_scenario(text, file=label)


def parse_scenario(text: str, *, file: str = "scenario") -> Scenario:
    """A scenario from TOML text (what :func:`read_scenario` does after reading the file)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"not valid TOML ({reason})", file=file,
                         fix="check quotes, brackets and '=' signs") from None
    return scenario_from_dict(data, file=file)


def scenario_from_dict(data: Mapping[str, Any], *, file: str = "scenario") -> Scenario:
    """A scenario from an already parsed mapping (same checks as a file)."""
    if not isinstance(data, Mapping):
        raise InputError("a scenario must be a table of keys", file=file,
                         fix="write name, description, [parameters] and [options]")
    for key in data:
        if key not in TOP_KEYS:
            raise InputError(f"unknown key '{_short(key)}'", file=file, column=_short(key),
                             fix=_fix_top_key(str(key)))
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or not name.isprintable()):
        raise InputError("name must be a non-empty text on one line", file=file, column="name",
                         fix='write name = "tight budget"')
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError("description must be a text", file=file, column="description",
                         fix='write description = "..."')
    params = data.get("parameters", {})
    if not isinstance(params, Mapping):
        raise InputError("parameters must be a table of name = value", file=file, column="parameters",
                         fix="write [parameters] on its own line, then one name = value a line")
    options = data.get("options", {})
    if not isinstance(options, Mapping):
        raise InputError("options must be a table of name = value", file=file, column="options",
                         fix="write [options] on its own line, then one name = value a line "
                             "(time_limit, gap, threads, seed, model, open, close)")
    checked_params = check_parameters(params, file=file, prefix="parameters.")
    checked = check_options(options, file=file, prefix="options.")
    if "model" in data:
        top = check_options({"model": data["model"]}, file=file, prefix="")["model"]
        if "model" in checked and checked["model"] != top:
            raise InputError(f"model is given twice ('{top}' and [options] model = '{checked['model']}')",
                             file=file, column="model", fix="keep one: [options] model = \"...\"")
        checked["model"] = top
    return Scenario(file=file, name=name, description=description, parameters=checked_params,
                    options=checked)


def _short(key: Any, limit: int = 60) -> str:
    """A key as messages show it: text, at most ``limit`` characters."""
    text = str(key)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did_you_mean(key: str, names) -> str | None:
    """The known name closest to ``key`` (case and '_' ignored), or None."""
    names = [str(n) for n in names]
    for squash in (str.lower, lambda t: t.lower().replace("_", "").replace("-", "").replace(" ", "")):
        by = {}
        for n in names:
            by.setdefault(squash(n), n)
        close = difflib.get_close_matches(squash(str(key)), list(by), n=1, cutoff=0.75)
        if close:
            return by[close[0]]
    return None


def _fix_top_key(key: str) -> str:
    option = _did_you_mean(key, OPTION_KEYS)
    if option:
        return f"did you mean '{option}'? Write it under [options]: [options] {option} = ..."
    param = _did_you_mean(key, Parameters.names())
    if param:
        return f"did you mean '{param}'? Write it under [parameters]: [parameters] {param} = ..."
    top = _did_you_mean(key, TOP_KEYS)
    if top:
        return f"did you mean '{top}'?"
    return "a scenario holds only name, description, [parameters] and [options] (see models/scenarios.md)"


def check_parameters(values: Mapping[str, Any], *, file: str, prefix: str = "") -> dict[str, Any]:
    """Each parameter name known and its value of the right type and range (no instance needed).

    Consistency between parameters (a minimum above its maximum) depends on the
    instance's own values and is checked when the scenario is applied.
    """
    out: dict[str, Any] = {}
    for key, raw in values.items():
        key = _short(key)
        if key in OPTION_KEYS:
            raise InputError(f"'{key}' is a solve option, not a parameter", file=file, column=f"{prefix}{key}",
                             fix=f"write it under [options] (or give {OPTION_FLAGS[key]} on the command line)")
        Parameters.check_value(key, raw, file=file, column=f"{prefix}{key}")
        out[key] = raw
    return out


def check_options(values: Mapping[str, Any], *, file: str, prefix: str = "",
                  flags: bool = False) -> dict[str, Any]:
    """Solve options checked for name, type and range; returns them normalised.

    ``flags=True`` names them as command-line options (``--time-limit``) in messages.
    """
    out: dict[str, Any] = {}
    for key, raw in values.items():
        key = _short(key)
        col = OPTION_FLAGS.get(key, key) if flags else f"{prefix}{key}"
        if key not in OPTION_KEYS:
            if key in Parameters.names():
                raise InputError(f"'{key}' is a parameter, not a solve option", file=file, column=col,
                                 fix=f"write it under [parameters] (or --set {key}=VALUE on the command line)")
            guess = _did_you_mean(key, OPTION_KEYS)
            known = ", ".join(OPTION_KEYS)
            raise InputError(f"unknown option '{key}'", file=file, column=col,
                             fix=(f"did you mean '{guess}'? " if guess else "") + f"[options] accepts {known}")
        if raw is None:
            continue
        out[key] = _check_option(key, raw, file=file, column=col)
    return out


def _number(raw: Any, *, file: str, column: str, what: str, example: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        shown = repr(raw) if not isinstance(raw, str) else f"'{raw[:40]}'"
        raise InputError(f"{shown} is not a number", file=file, column=column,
                         fix=f"write {what} as a number without quotes, e.g. {example}")
    value = float(raw) if abs(raw) < 1e308 or isinstance(raw, float) else math.inf
    if not math.isfinite(value):
        raise InputError(f"{str(raw)[:40]} is not a finite number", file=file, column=column,
                         fix=f"write {what}, e.g. {example}")
    return value


def _check_option(key: str, raw: Any, *, file: str, column: str) -> Any:
    if key == "model":
        names = models()
        if not isinstance(raw, str) or raw not in names:
            shown = f"'{raw[:40]}'" if isinstance(raw, str) else repr(raw)[:40]
            guess = _did_you_mean(raw, names) if isinstance(raw, str) else None
            raise InputError(f"unknown model {shown}", file=file, column=column,
                             fix=(f"did you mean '{guess}'? " if guess else "") + "use one of: " + ", ".join(names))
        return raw
    if key == "time_limit":
        lo, hi = TIME_LIMIT_RANGE
        value = _number(raw, file=file, column=column, what="seconds", example="600")
        if not lo <= value <= hi:
            raise InputError(f"{value:g} s is out of range", file=file, column=column,
                             fix=f"give seconds from {lo:g} to {hi:,.0f}")
        return value
    if key == "gap":
        lo, hi = GAP_RANGE
        value = _number(raw, file=file, column=column, what="a relative gap", example="0.01")
        if not lo <= value <= hi:
            raise InputError(f"{value:g} is out of range", file=file, column=column,
                             fix="give the relative gap as a fraction from 0 to 1 (0.01 for 1 %)")
        return value
    if key in ("threads", "seed"):
        lo, hi = THREADS_RANGE if key == "threads" else SEED_RANGE
        what = "a number of threads" if key == "threads" else "a random seed"
        if isinstance(raw, bool) or not isinstance(raw, int):
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            else:
                shown = f"'{raw[:40]}'" if isinstance(raw, str) else repr(raw)[:40]
                raise InputError(f"{shown} is not a whole number", file=file, column=column,
                                 fix=f"write {what} as a whole number without quotes, from {lo} to {hi:,}")
        if not lo <= raw <= hi:
            raise InputError(f"{str(raw)[:40]} is out of range", file=file, column=column,
                             fix=f"write {what} from {lo} to {hi:,}")
        return int(raw)
    # open / close: site ids
    if isinstance(raw, str):
        raw = [raw]  # one id, never its letters
    if not isinstance(raw, (list, tuple)):
        raise InputError(f"{type(raw).__name__} is not a list of site ids", file=file, column=column,
                         fix=f'write {key} = ["CS-58001", "CDS-58194"]')
    ids = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"{item!r} is not a site id"[:80], file=file, column=column,
                             fix=f'write site ids as quoted text, e.g. {key} = ["CS-58001"] (quotes keep '
                                 "leading zeros)")
        ids.append(item.strip())
    seen = set()
    for sid in ids:
        if sid in seen:
            raise InputError(f"site '{sid[:60]}' is listed twice", file=file, column=column, fix="name each site once")
        seen.add(sid)
    return tuple(ids)


# ---------------------------------------------------------------------------------
# --set NAME=VALUE
# ---------------------------------------------------------------------------------

def parse_sets(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` items as a mapping of parameter names to text values (checked later)."""
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise InputError(f"--set '{item[:60]}' is not NAME=VALUE", column="--set",
                             fix="write for example --set cabinet_fixed_cost=20000")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise InputError(f"--set '{item[:60]}' has no name before '='", column="--set",
                             fix="write for example --set cabinet_fixed_cost=20000")
        if k in OPTION_KEYS:
            raise InputError(f"'{k}' is a solve option, not a parameter", column="--set",
                             fix=f"give {OPTION_FLAGS[k]} instead of --set {k}=...")
        if k in out and out[k] != v.strip():
            raise InputError(f"--set {k} is given twice ('{out[k]}' and '{v.strip()[:40]}')", column="--set",
                             fix=f"give --set {k}=... once")
        out[k] = v.strip()
    return out


# ---------------------------------------------------------------------------------
# applying: defaults < manifest < scenario < command line
# ---------------------------------------------------------------------------------

def apply(instance, scenario: Scenario | None = None, overrides: Mapping[str, Any] | None = None, *,
          verbose: bool = False, file: str = "command line"):
    """The instance with the scenario's then the overrides' parameters, and the SolveOptions.

    ``overrides`` is one flat mapping of command-line values: option names (``model``,
    ``time_limit``, ``gap``, ``threads``, ``seed``, ``open``, ``close``) and parameter names
    (``budget``, ``coverage_minutes``, any ``--set``); ``None`` means not given. A layer
    replaces a value, never merges: ``open`` on the command line replaces the scenario's list.
    Site ids forced open or closed are checked against the instance here.
    """
    from .solver import SolveOptions

    scenario = scenario or Scenario()
    given = {k: v for k, v in (overrides or {}).items() if v is not None and not (
        k in ("open", "close") and isinstance(v, (list, tuple)) and len(v) == 0)}
    cli_options = check_options({k: v for k, v in given.items() if k in OPTION_KEYS}, file=file, flags=True)
    cli_params = {k: v for k, v in given.items() if k not in OPTION_KEYS}

    inst = instance.with_parameters(dict(scenario.parameters), file=scenario.file)
    inst = inst.with_parameters(cli_params, file=file)

    merged = {**option_defaults(), **scenario.options, **cli_options}
    for key in ("open", "close"):
        where = file if key in cli_options else scenario.file
        column = OPTION_FLAGS[key] if key in cli_options else f"options.{key}"
        for sid in merged[key]:
            if sid not in inst.sites.index:
                guess = _did_you_mean(sid, [str(s) for s in inst.sites.index])
                raise InputError(f"unknown site id '{sid[:60]}'", file=where, column=column,
                                 fix=(f"did you mean '{guess}'? " if guess else "")
                                 + "use a site_id of the instance's sites table")
    both = set(merged["open"]) & set(merged["close"])
    if both:
        raise InputError(f"site '{sorted(both)[0]}' is both forced open and forced closed",
                         file=scenario.file if not ({"open", "close"} & set(cli_options)) else file,
                         column="open/close", fix="name each site once")
    options = SolveOptions(
        model=merged["model"], time_limit=merged["time_limit"], gap=merged["gap"],
        threads=merged["threads"], seed=merged["seed"], force_open=tuple(merged["open"]),
        force_closed=tuple(merged["close"]), verbose=verbose,
    )
    return inst, options


def documented_keys() -> dict[str, tuple[str, ...]]:
    """The keys a scenario accepts, by table (what ``models/scenarios.md`` must list)."""
    return {"top": TOP_KEYS, "options": OPTION_KEYS, "parameters": tuple(Parameters.names()), "levers": LEVERS,
            "robust": ROBUST}
