"""PLINK 1 genotype cohorts and covariates (knockoffnet.genotypes, knockoffnet.ingest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from knockoffnet.errors import InputError
from knockoffnet.ingest import load_cohort

from conftest import write_plink


def _spec(prefix: Path, pheno: Path, **kw) -> dict:
    return {"plink": str(prefix), "pheno": str(pheno), "label": "case", **kw}


def test_plink_cohort_matches_samples_by_iid(tmp_path: Path) -> None:
    prefix, pheno, G = write_plink(tmp_path)
    cohort = load_cohort("geno", _spec(prefix, pheno, covariates=["age"]), {})
    table = pd.read_csv(pheno, sep="\t")
    assert cohort.ids == table["IID"].tolist()  # the phenotype table's order
    rows = [int(i[2:]) for i in cohort.ids]
    assert cohort.features == [f"rs{j}" for j in range(12)]
    raw = (cohort.X * cohort.sds) + cohort.means
    np.testing.assert_allclose(raw, G[rows], atol=1e-5)
    np.testing.assert_array_equal(cohort.y, table["case"])
    assert cohort.covariates == ["age"] and cohort.C.shape == (115, 1)
    np.testing.assert_allclose(cohort.C.mean(0), 0, atol=1e-12)
    assert cohort.variants["chromosome"][0] == "1" and cohort.variants["position"][1] == 1100
    assert cohort.dropped["samples_without_phenotype"] == 5
    meta = cohort.meta()
    assert meta["covariates"] == ["age"] and "age" not in meta["features"]


def test_missing_genotypes_follow_the_missing_policy(tmp_path: Path) -> None:
    prefix, pheno, _ = write_plink(tmp_path, missing=7)
    with pytest.raises(InputError, match=r"preprocess\.missing"):
        load_cohort("geno", _spec(prefix, pheno), {})
    imputed = load_cohort("geno", _spec(prefix, pheno), {"missing": "impute-mean"})
    assert np.isfinite(imputed.X).all() and imputed.X.shape == (115, 12)
    dropped = load_cohort("geno", _spec(prefix, pheno), {"missing": "drop-rows"})
    assert dropped.X.shape[0] == 115 - dropped.dropped["rows_missing"] > 100


def test_categorical_covariate_is_dummy_coded_or_refused(tmp_path: Path) -> None:
    prefix, pheno, _ = write_plink(tmp_path)
    with pytest.raises(InputError, match=r"covariate column\(s\) \['sex'\] are not numeric"):
        load_cohort("geno", _spec(prefix, pheno, covariates=["sex"]), {})
    cohort = load_cohort(
        "geno", _spec(prefix, pheno, covariates=["sex", "age"]), {"categorical": "onehot"}
    )
    assert cohort.covariates == ["age", "sex=M"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ("absent", "have no genotypes in"),
        ("duplicate", "duplicate values"),
        ("no_fam", "geno.fam'] not found"),
        ("bad_column", "['weight'] named in `cohorts.geno` are not in the phenotype table"),
        ("variant", "variant(s) ['rs99'] named in `cohorts.geno`"),
    ],
)
def test_bad_plink_inputs_name_the_file_and_fix(tmp_path: Path, change: str, fragment: str):
    prefix, pheno, _ = write_plink(tmp_path)
    spec = _spec(prefix, pheno)
    table = pd.read_csv(pheno, sep="\t")
    if change == "absent":
        table.loc[0, "IID"] = "stranger"
    elif change == "duplicate":
        table.loc[1, "IID"] = table.loc[0, "IID"]
    elif change == "no_fam":
        Path(f"{prefix}.fam").unlink()
    elif change == "bad_column":
        spec["covariates"] = ["weight"]
    elif change == "variant":
        spec["exclude"] = ["rs99"]
    table.to_csv(pheno, sep="\t", index=False)
    with pytest.raises(InputError) as err:
        load_cohort("geno", spec, {})
    assert fragment in str(err.value)


def test_table_cohort_covariates_are_not_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.standard_normal((80, 4)), columns=["a", "b", "c", "age"])
    frame["y"] = (frame["a"] > 0).astype(int)
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = {"path": str(tmp_path / "t.csv"), "label": "y", "covariates": ["age"]}
    cohort = load_cohort("t", spec, {})
    assert cohort.features == ["a", "b", "c"] and cohort.covariates == ["age"]
    np.testing.assert_allclose(cohort.C[:, 0].std(), 1.0)
    with pytest.raises(InputError, match=r"listed under `cohorts\.t\.covariates` and as the label"):
        load_cohort("t", {**spec, "covariates": ["y"]}, {})
    frame["age"] = 3.0
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match="covariate 'age' is constant"):
        load_cohort("t", spec, {})
