"""optisite: siting cabinets secondaires and centres de santé for GP access in France.

The Python API, what the CLI calls (see ``docs/api.md`` and ``docs/example.py``)::

    import optisite as ops

    inst = ops.load_instance("instances/nievre-58")          # validated data
    sol = ops.solve(inst, ops.SolveOptions(model="staffing", time_limit=60))
    sol.write("out/nievre-58")                               # tables, solution.json, report.html
    ops.check("out/nievre-58", inst)                         # the independent checker
    html = ops.render_report(inst, sol)                      # the report as a string
    frontier = ops.run_frontier(inst, [0, 1e6, 2e6], ops.SolveOptions(model="coverage"))
    table = ops.compare_folders(["out/a", "out/b"])          # scenarios side by side
    ops.list_models()                                        # the registered models
"""

__version__ = "0.1.0"

from .errors import CheckError, InfeasibleError, InputError, OptisiteError  # noqa: E402

# The rest loads on first use (PEP 562), so that ``import optisite`` and the start of the
# command line stay light (pandas, Pyomo and HiGHS load only when needed).
_LAZY = {
    "Instance": ("instance", "Instance"), "instance_from_frames": ("instance", "instance_from_frames"),
    "load_instance": ("instance", "load_instance"), "Parameters": ("parameters", "Parameters"),
    "solve": ("pipeline", "solve"),  # (pipeline.build builds without solving: optisite.build builds instances)
    "Solution": ("solution", "Solution"), "read_solution": ("solution", "read_solution"),
    "SolveOptions": ("solver", "SolveOptions"),
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        value = getattr(import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'optisite' has no attribute '{name}'")


def list_models() -> dict[str, str]:
    """The registered models: name -> one-line description."""
    from .models import get, names

    return {n: get(n).title for n in names()}


def check(solution, instance):
    """Check a :class:`Solution` or a written solution folder against ``instance`` with the
    independent checker; returns its report (a folder with a violation raises CheckError)."""
    from .checker import check_folder, check_solution
    from .solution import Solution

    if isinstance(solution, Solution):
        return check_solution(instance, solution)
    return check_folder(solution, instance)


def render_report(instance, solution) -> str:
    """``report.html`` of a solution, as one self-contained HTML string."""
    from .report import render_report as render

    return render(instance, solution)


def run_frontier(instance, budgets, options, **kwargs):
    """Solve ``instance`` at each budget (a table: one row per budget, see ``frontier.py``)."""
    from .frontier import run_frontier as run

    return run(instance, budgets, options, **kwargs)


def compare_folders(folders):
    """Indicators, differing sites and differing parameters of solution folders."""
    from .compare import compare as run

    return run(folders)


__all__ = [
    "CheckError", "InfeasibleError", "InputError", "OptisiteError",
    "Instance", "instance_from_frames", "load_instance", "Parameters", "Solution", "SolveOptions",
    "check", "compare_folders", "list_models", "read_solution", "render_report", "run_frontier", "solve",
    "__version__",
]
