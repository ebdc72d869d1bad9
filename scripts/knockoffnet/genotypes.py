"""PLINK 1 genotype cohorts: ``.bed/.bim/.fam`` plus a phenotype table keyed by IID.

The usual ``--pheno``/``--covar`` layout: one table (TSV/CSV/Parquet) with the sample id
column (``id``, default ``IID``), the outcome (``label``) and any covariates. Samples are
matched by IID: a phenotype row without genotypes, or an IID listed twice in either file, is
an error that names the ids; genotyped samples without a phenotype row are left out (and
counted in ``meta.json``). Variants are named by their ``.bim`` ID and read with
``bed-reader`` in column blocks, as float32, into the one matrix the cohort needs; missing
genotypes are NaN and follow ``preprocess.missing`` like any missing value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.ingest import (
    _as_list,
    _dropped,
    _Raw,
    numeric_columns,
    read_table,
    table_header,
    unique_ids,
)

PLINK_SUFFIXES = (".bed", ".bim", ".fam")
# Variants read per block: bounds the float32 staging buffer to n × BLOCK values.
BLOCK = 2048


def plink_files(prefix: str | Path) -> list[Path]:
    """The three files of a PLINK 1 fileset, checked to exist."""
    files = [Path(f"{prefix}{suffix}") for suffix in PLINK_SUFFIXES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(
            f"PLINK fileset {prefix}: {missing} not found; `plink` names the common prefix of "
            "the .bed, .bim and .fam files (e.g. data/chr22 for data/chr22.bed)"
        )
    return files


def read_plink_cohort(name: str, spec: dict[str, Any], preprocess: dict[str, Any]) -> _Raw:
    """Genotypes of the samples in the phenotype table, with its label and covariates."""
    from bed_reader import open_bed

    key = f"cohorts.{name}"
    prefix, pheno_path = spec["plink"], Path(spec["pheno"])
    bed_path = plink_files(prefix)[0]
    where = f"{prefix}.bed/.bim/.fam with {pheno_path}"
    label = spec["label"]
    id_col = spec.get("id") or "IID"
    covariates = _as_list(spec.get("covariates"), f"{key}.covariates")
    header = table_header(pheno_path)
    missing_cols = [c for c in [id_col, label, *covariates] if c not in header]
    if missing_cols:
        raise InputError(
            f"{pheno_path}: column(s) {missing_cols} named in `{key}` are not in the phenotype "
            f"table; its columns start with {header[:8]} (the sample id column is `id`, "
            "default IID)"
        )
    pheno = read_table(pheno_path, [id_col, label, *covariates])
    pheno_ids = unique_ids(pheno[id_col], str(pheno_path), id_col)
    try:
        bed = open_bed(bed_path, count_A1=True)
        iids = [str(i) for i in bed.iid]
        sids = [str(s) for s in bed.sid]
        chromosome, position = bed.chromosome, bed.bp_position
    except Exception as err:  # bed-reader reports malformed files with various types
        raise InputError(f"{bed_path}: not a readable PLINK 1 fileset ({err})") from err
    unique_ids(pd.Series(iids), f"{prefix}.fam", "IID")
    dup_sids = sorted({s for s in sids if sids.count(s) > 1}) if len(set(sids)) < len(sids) else []
    if dup_sids:
        raise InputError(
            f"{prefix}.bim: variant id(s) {dup_sids[:5]} appear more than once; give every "
            "variant a unique ID (e.g. plink2 --set-all-var-ids)"
        )
    row_of = {iid: i for i, iid in enumerate(iids)}
    absent = [i for i in pheno_ids if i not in row_of]
    if absent:
        raise InputError(
            f"{pheno_path}: {len(absent)} sample(s) in column {id_col!r} have no genotypes in "
            f"{prefix}.fam (e.g. {absent[:5]}); remove them or check the id column (IID, not FID)"
        )
    rows = np.array([row_of[i] for i in pheno_ids], dtype=np.int64)
    wanted = _as_list(spec.get("features"), f"{key}.features")
    exclude = set(_as_list(spec.get("exclude"), f"{key}.exclude"))
    unknown = [v for v in [*wanted, *exclude] if v not in set(sids)]
    if unknown:
        raise InputError(
            f"{prefix}.bim: variant(s) {unknown[:5]} named in `{key}` are not in the fileset"
        )
    chosen = [j for j, s in enumerate(sids) if (not wanted or s in set(wanted))]
    chosen = np.array([j for j in chosen if sids[j] not in exclude], dtype=np.int64)
    if chosen.size == 0:
        raise InputError(f"{where}: no variants left after `{key}.exclude`")
    values = np.empty((rows.size, chosen.size), dtype=np.float32)  # dosages: exact in float32
    for start in range(0, chosen.size, BLOCK):
        cols = chosen[start : start + BLOCK]
        values[:, start : start + cols.size] = bed.read(index=np.s_[rows, cols], dtype="float32")
    dropped = _dropped(preprocess)
    dropped["samples_without_phenotype"] = len(iids) - rows.size
    return _Raw(
        where=where,
        source=f"{prefix}.bed",
        values=values,
        names=[sids[j] for j in chosen],
        label=pheno[label].reset_index(drop=True),
        ids=pheno_ids,
        covariates=numeric_columns(
            pheno[covariates].reset_index(drop=True),
            str(pheno_path),
            "covariate",
            preprocess,
            dropped,
        ).astype(np.float64),
        dropped=dropped,
        variants={
            "chromosome": [str(chromosome[j]) for j in chosen],
            "position": [int(position[j]) for j in chosen],
        },
    )


def write_plink(
    prefix: str | Path,
    dosages: np.ndarray,
    iids: list[str],
    variants: list[str],
    chromosome: list[str] | None = None,
    position: list[int] | None = None,
) -> list[Path]:
    """A PLINK 1 fileset (``prefix``.bed/.bim/.fam) of 0/1/2 dosages (NaN = missing) through
    ``bed-reader``; FID = IID, one chromosome "1" and positions 1000·j unless given."""
    from bed_reader import to_bed

    G = np.asarray(dosages, dtype=np.float32)
    finite = G[np.isfinite(G)]
    if finite.size and not np.isin(finite, (0.0, 1.0, 2.0)).all():
        raise InputError(f"{prefix}.bed: PLINK 1 stores dosages 0, 1, 2 or missing only")
    p = G.shape[1]
    to_bed(
        f"{prefix}.bed",
        G,
        properties={
            "iid": list(iids),
            "fid": list(iids),
            "sid": list(variants),
            "chromosome": chromosome or ["1"] * p,
            "bp_position": position or [1000 * (j + 1) for j in range(p)],
        },
    )
    return plink_files(prefix)
