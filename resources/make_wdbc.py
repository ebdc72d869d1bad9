"""Write the bundled WDBC cohort from scikit-learn's copy of the UCI data set.

Run from the repository root: ``python resources/make_wdbc.py``. The output is committed, so a
normal run never needs this script; it exists so that the bundled file can be re-derived and
checked (``tests/test_resources.py`` regenerates it and compares byte for byte).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer

STATS = {"mean": ("mean", 1), "error": ("se", 2), "worst": ("worst", 3)}

DESCRIPTIONS = {
    "radius": "mean distance from the centre of the nucleus to points on its perimeter",
    "texture": "standard deviation of grey-scale values within the nucleus",
    "perimeter": "length of the nuclear boundary",
    "area": "pixel count within the nuclear boundary",
    "smoothness": "local variation in radius lengths",
    "compactness": "perimeter^2 / area - 1.0",
    "concavity": "severity of concave portions of the contour",
    "concave points": "number of concave portions of the contour",
    "symmetry": "symmetry of the nucleus",
    "fractal dimension": "'coastline approximation' - 1",
}
SUMMARY_TEXT = {
    "mean": "mean over nuclei",
    "se": "standard error over nuclei",
    "worst": "mean of the three largest values",
}


def column_name(sklearn_name: str) -> tuple[str, str, str, int]:
    """Map 'mean concave points' -> ('concave_points_mean', 'concave points', 'mean', 1)."""
    for prefix, (short, index) in STATS.items():
        if sklearn_name.startswith(prefix + " "):
            base = sklearn_name[len(prefix) + 1 :]
            return f"{base.replace(' ', '_')}_{short}", base, short, index
        if sklearn_name.endswith(" " + prefix):
            base = sklearn_name[: -len(prefix) - 1]
            return f"{base.replace(' ', '_')}_{short}", base, short, index
    raise ValueError(f"unexpected WDBC column {sklearn_name!r}")


def build() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (cohort table, data dictionary)."""
    data = load_breast_cancer()
    names = [column_name(n) for n in data.feature_names]
    cohort = pd.DataFrame(data.data, columns=[n[0] for n in names])
    # scikit-learn codes 0 = malignant, 1 = benign; the UCI file and the paper use M/B.
    cohort.insert(0, "diagnosis", pd.Series(data.target).map({0: "M", 1: "B"}).to_numpy())
    cohort.insert(0, "sample", [f"WDBC{i + 1:04d}" for i in range(len(cohort))])
    rows = []
    for position, (col, base, short, index) in enumerate(names, start=1):
        rows.append(
            {
                "column": col,
                "paper_name": f"x{position}",
                "paper_column": f"{base.replace(' ', '_')}{index}",
                "feature": base,
                "summary": SUMMARY_TEXT[short],
                "description": DESCRIPTIONS[base],
            }
        )
    rows.insert(
        0,
        {
            "column": "diagnosis",
            "paper_name": "y",
            "paper_column": "diagnosis",
            "feature": "diagnosis",
            "summary": "outcome",
            "description": "M = malignant, B = benign",
        },
    )
    rows.insert(
        0,
        {
            "column": "sample",
            "paper_name": "",
            "paper_column": "",
            "feature": "sample",
            "summary": "identifier",
            "description": "row number in the UCI file (the UCI ID numbers are not in scikit-learn's copy)",
        },
    )
    return cohort, pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    cohort, dictionary = build()
    cohort.to_csv(args.out / "wdbc.csv", index=False, float_format="%.6g")
    dictionary.to_csv(args.out / "wdbc_dictionary.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
