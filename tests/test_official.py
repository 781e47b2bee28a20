"""The shipped DREES APL 2023: the copy matches the data set, communes are matched, provenance is kept."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optisite.official import ATTRIBUTION, apl_official, drees_parameters, drees_table, official_apl

from optisite.errors import InputError
from optisite.instance import load_instance

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "drees-apl"


def test_sanity_values_of_the_shipped_copy():
    t = drees_table()
    assert len(t) == 34_954
    assert t.at["58194", "apl_mg"] == pytest.approx(2.983)  # Nevers
    assert t.at["35238", "apl_mg"] == pytest.approx(4.761)  # Rennes
    assert t.at["58034", "apl_mg"] == 0.0  # Blismes
    assert np.average(t["apl_mg"], weights=t["pop_std"]) == pytest.approx(3.74, abs=0.005)
    assert "Licence Ouverte" in ATTRIBUTION and "DREES" in ATTRIBUTION


def test_shipped_copy_equals_the_data_set():
    if not (SHARED / "apl_mg_2023.csv").is_file():
        pytest.fail(f"the DREES data set is missing from {SHARED}")
    src = pd.read_csv(SHARED / "apl_mg_2023.csv", dtype={"code_commune": str}).set_index("code_commune")
    pd.testing.assert_frame_equal(drees_table(), src[drees_table().columns], check_dtype=False)
    for key, name in (("decay", "decay_2023.csv"), ("age_weights", "age_weights_2023.csv"),
                      ("activity_caps", "activity_caps_2023.csv")):
        pd.testing.assert_frame_equal(drees_parameters()[key], pd.read_csv(SHARED / name))


def test_arrondissements_and_parts_are_aggregated():
    t = drees_table()
    out = official_apl(["69123", "99999", "58194"], parts={"99999": ["58194", "58034"]})
    arr = t.loc[[f"6938{k}" for k in range(1, 10)]]
    assert out.at["69123", "apl_mg"] == pytest.approx(np.average(arr["apl_mg"], weights=arr["pop_std"]))
    assert out.at["69123", "pop_totale"] == arr["pop_totale"].sum()
    both = t.loc[["58194", "58034"]]
    assert out.at["99999", "apl_mg"] == pytest.approx(np.average(both["apl_mg"], weights=both["pop_std"]))
    assert list(out["matched"]) == ["parts", "parts", "code"]
    assert np.isnan(official_apl(["00000"]).at["00000", "apl_mg"])


def test_apl_official_of_an_instance_without_the_column_is_nan():
    tiny = load_instance(ROOT / "instances" / "tiny")
    s = apl_official(tiny)
    assert s.isna().all() and list(s.index) == list(tiny.zones.index)


def test_optional_official_columns_are_read_as_numbers(tiny_copy):
    zones = pd.read_csv(tiny_copy / "zones.csv", dtype=str)
    zones["apl_official"] = ["2.5", "", "0", "4,1"][: len(zones)] + ["1"] * (len(zones) - 4)
    zones["apl_official"] = zones["apl_official"].str.replace(",", ".")
    zones.to_csv(tiny_copy / "zones.csv", index=False)
    s = apl_official(load_instance(tiny_copy))
    assert s.iloc[0] == 2.5 and np.isnan(s.iloc[1]) and s.iloc[3] == 4.1
    zones["planning"] = "1"
    zones.loc[1, "planning"] = "0.5"
    zones.to_csv(tiny_copy / "zones.csv", index=False)
    with pytest.raises(InputError, match=r"zones.csv, row 3, column 'planning'.*not 0 or 1"):
        load_instance(tiny_copy)
    zones.loc[1, "planning"] = "0"
    zones.loc[2, "apl_official"] = "-1"
    zones.to_csv(tiny_copy / "zones.csv", index=False)
    with pytest.raises(InputError, match=r"row 4, column 'apl_official'"):
        load_instance(tiny_copy)
