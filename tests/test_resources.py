"""The bundled WDBC cohort is exactly what its script derives from scikit-learn's copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from conftest import REPO


def test_wdbc_regenerates_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "resources" / "make_wdbc.py"), "--out", str(tmp_path)],
        check=True,
    )
    for name in ("wdbc.csv", "wdbc_dictionary.tsv"):
        assert (tmp_path / name).read_bytes() == (REPO / "resources" / name).read_bytes(), name


def test_wdbc_shape_names_and_paper_mapping() -> None:
    cohort = pd.read_csv(REPO / "resources" / "wdbc.csv")
    assert cohort.shape == (569, 32)
    assert cohort["diagnosis"].value_counts().to_dict() == {"B": 357, "M": 212}
    assert "radius_mean" in cohort and "concave_points_worst" in cohort
    dictionary = pd.read_csv(REPO / "resources" / "wdbc_dictionary.tsv", sep="\t").set_index(
        "column"
    )
    assert dictionary.loc["radius_mean", "paper_name"] == "x1"
    assert dictionary.loc["texture_mean", "paper_name"] == "x2"
    assert dictionary.loc["radius_se", "paper_name"] == "x11"
    assert dictionary.loc["fractal_dimension_worst", "paper_name"] == "x30"
    assert dictionary.loc["concave_points_se", "paper_column"] == "concave_points2"
