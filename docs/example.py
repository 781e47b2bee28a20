"""A planner's session in Python: the same steps as the CLI, on the shipped Nièvre instance.

Run it from the repository root (``python docs/example.py``); ``tests/test_api_example.py``
runs it too, so it stays true. Each step prints what a planner would look at.
"""

from pathlib import Path
import sys
import tempfile

import optisite as ops

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="optisite-example-"))

# 1. Load and look at the territory (validated: a bad file stops here with one clear line).
inst = ops.load_instance(ROOT / "instances" / "nievre-58")
print(inst)

# 2. Which models are there?
for name, what in ops.list_models().items():
    print(f"{name:10s} {what}")

# 3. What does full coverage cost? (the lscp model: the budget is not a constraint)
full = ops.solve(inst, ops.SolveOptions(model="lscp", time_limit=TIME_LIMIT, threads=1))
print("full coverage:", full)

# 4. The main job: the staffing plan within the instance's budget, checked independently.
plan = ops.solve(inst, ops.SolveOptions(model="staffing", time_limit=TIME_LIMIT, threads=1))
print("staffing plan:", plan)
print(plan.sites[["site_id", "kind", "name", "days_per_week", "fte", "cost_total"]].to_string(index=False))
assert plan.summary["check"]["ok"], plan.summary["check"]["violations"]

# 5. Write the folder (tables, solution.json, report.html) and check it again from the files alone.
folder = plan.write(out / "staffing", force=True)
report = ops.check(folder, inst)
print("checked from the files:", "ok" if report.ok else report.violations)

# 6. A second scenario (another budget) and the comparison of the two.
richer = inst.with_parameters({"budget": 2 * inst.parameters.budget})
plan2 = ops.solve(richer, ops.SolveOptions(model="staffing", time_limit=TIME_LIMIT, threads=1))
folder2 = plan2.write(out / "staffing-double-budget", force=True)
cmp = ops.compare_folders([folder, folder2])
print(cmp["indicators"][["scenario", "population_uncovered", "cost_total", "sites_opened"]].to_string(index=False))
print("parameters that differ:", list(cmp["parameters"]["parameter"]))
print("written:", out)
