"""Step distance-decay functions of the DREES APL indicator."""

from __future__ import annotations

import numpy as np

# Each entry: (upper bound in minutes, weight for times strictly below it).
# Times at or above the last bound weigh 0.
DECAYS: dict[str, tuple[tuple[float, float], ...]] = {
    # DREES method since the 2019 APL, unchanged in 2023: 1 under 10 min, 2/3 from 10 to 15,
    # 1/3 from 15 to 20 (DREES workbook apl_generalistes.xlsx, sheet "Paramètres"; shipped as
    # optisite/data/drees_decay_2023.csv, which tests/test_drees_parameters.py compares).
    "drees2019": ((10.0, 1.0), (15.0, 2.0 / 3.0), (20.0, 1.0 / 3.0)),
    # First APL (Barlet et al. 2012): 1 under 5 min, 0.3 from 5 to 10, 0.1 from 10 to 15.
    "drees2012": ((5.0, 1.0), (10.0, 0.3), (15.0, 0.1)),
}


def decay_steps(name: str) -> tuple[tuple[float, float], ...]:
    return DECAYS[name]


def decay_weight(minutes, name: str) -> np.ndarray:
    """Weight of each travel time (array-like, minutes) under the named step decay."""
    t = np.asarray(minutes, dtype=float)
    w = np.zeros_like(t)
    lower = -np.inf
    for upper, weight in decay_steps(name):
        w[(t >= lower) & (t < upper)] = weight
        lower = upper
    return w
