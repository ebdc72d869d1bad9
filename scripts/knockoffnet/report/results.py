"""The result files of one cohort, read once, from the paths the report rules declare.

``ResultFiles`` names every file the figures and the page read; the workflow builds it from the
rule's declared inputs (a missing input fails the DAG, never the page), tests and ad-hoc use
from a results folder (:meth:`ResultFiles.from_dir`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from knockoffnet.report.format import _as_bool, _as_float

_RUN_FILE = re.compile(r"draw(\d+)_seed(\d+)_path\.tsv$")


@dataclass(frozen=True)
class ResultFiles:
    """Every file the report reads. ``paths`` pairs each run (draw, seed) with its λ-path
    table; ``benchmarks`` lists Snakemake benchmark files, their rule named by the folder
    below ``benchmark_root`` (or the file name directly under it)."""

    statistics: Path
    thresholds: Path
    selected: Path
    features: Path
    meta: Path
    run: Path | None = None
    labels: Path | None = None
    diagnostics: tuple[Path, ...] = ()
    paths: tuple[tuple[int, int, Path], ...] = ()
    structure: Path | None = None
    summary: Path | None = None
    prediction: Path | None = None
    masks: Path | None = None
    benchmarks: tuple[Path, ...] = ()
    benchmark_root: Path | None = None

    @classmethod
    def from_inputs(
        cls, inputs: Any, runs: list[tuple[int, int]], benchmark_root: str | None = None
    ) -> ResultFiles:
        """From a rule's declared inputs (attribute access by name, e.g. ``snakemake.input``);
        ``runs`` pairs the ``paths`` inputs with their (draw, seed), in order."""

        def one(name: str) -> Path | None:
            value = getattr(inputs, name, None)
            return None if value is None else Path(value)

        def many(name: str) -> tuple[Path, ...]:
            return tuple(Path(f) for f in getattr(inputs, name, None) or ())

        paths = many("paths")
        if len(paths) != len(runs):
            raise ValueError(f"{len(paths)} λ-path tables for {len(runs)} runs")
        return cls(
            statistics=Path(inputs.statistics),
            thresholds=Path(inputs.thresholds),
            selected=Path(inputs.selected),
            features=Path(inputs.features),
            meta=Path(inputs.meta),
            run=one("run"),
            labels=one("labels"),
            diagnostics=many("diagnostics"),
            paths=tuple((int(d), int(s), f) for (d, s), f in zip(runs, paths, strict=True)),
            structure=one("structure"),
            summary=one("summary"),
            prediction=one("prediction"),
            masks=one("masks"),
            benchmarks=many("benchmarks"),
            benchmark_root=Path(benchmark_root) if benchmark_root else None,
        )

    @classmethod
    def from_dir(cls, root: Path | str, masks: str | None = None) -> ResultFiles:
        """The files of a results folder ``results/{cohort}`` by their usual names, those
        present only (for tests and for re-rendering by hand); ``masks`` names the filter whose
        mask file to draw (default: run.json's recommended filter)."""
        root = Path(root)

        def opt(rel: str) -> Path | None:
            return root / rel if (root / rel).exists() else None

        paths = []
        for f in sorted((root / "z").glob("draw*_seed*_path.tsv")):
            m = _RUN_FILE.search(f.name)
            if m:
                paths.append((int(m[1]), int(m[2]), f))
        if masks is None and (root / "run.json").exists():
            masks = json.loads((root / "run.json").read_text()).get("recommended_filter")
        bench = root / "benchmarks"
        return cls(
            statistics=root / "statistics.tsv",
            thresholds=root / "thresholds.tsv",
            selected=root / "selected.tsv",
            features=root / "features.tsv",
            meta=root / "data" / "meta.json",
            run=opt("run.json"),
            labels=opt("labels.tsv"),
            diagnostics=tuple(sorted((root / "knockoffs").glob("draw*_diagnostics.tsv"))),
            paths=tuple(paths),
            structure=opt("pruning/structure.tsv"),
            summary=opt("pruning/summary.tsv"),
            prediction=opt("pruning/prediction.tsv"),
            masks=opt(f"pruning/masks_{masks}.npz") if masks else None,
            benchmarks=tuple(sorted(bench.rglob("*.tsv"))) if bench.is_dir() else (),
            benchmark_root=bench if bench.is_dir() else None,
        )


def _read_tsv(path: Path | None) -> pd.DataFrame | None:
    """An absent optional file is None, not an error: the page says what it could not show."""
    return pd.read_csv(path, sep="\t") if path is not None else None


def _read_paths(paths: tuple[tuple[int, int, Path], ...]) -> pd.DataFrame:
    frames = [pd.read_csv(f, sep="\t").assign(draw=d, seed=s) for d, s, f in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_diagnostics(files: tuple[Path, ...]) -> pd.DataFrame:
    frames = [pd.read_csv(f, sep="\t") for f in files]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "flag" in df:
        df["flag"] = _as_bool(df["flag"])
    return df.sort_values("draw") if "draw" in df else df


@dataclass
class Results:
    """Everything the report needs, read once."""

    files: ResultFiles
    meta: dict
    run: dict
    labels: pd.DataFrame | None
    diagnostics: pd.DataFrame
    paths: pd.DataFrame
    statistics: pd.DataFrame
    thresholds: pd.DataFrame
    selected: pd.DataFrame
    features: pd.DataFrame
    structure: pd.DataFrame | None
    summary: pd.DataFrame | None
    prediction: pd.DataFrame | None
    extra: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.run.get("config") or {}

    @property
    def q(self) -> float:
        return float(self.config.get("selection", {}).get("q", 0.1))

    @property
    def offset(self) -> int:
        return int(self.config.get("selection", {}).get("offset", 1))

    @property
    def copies(self) -> int:
        """κ the draws used: the knockoff diagnostics record it (``copies: auto`` resolves
        per cohort); the config's integer where no draw has been read."""
        if "copies" in self.diagnostics.columns and not self.diagnostics.empty:
            return int(self.diagnostics["copies"].max())
        value = self.config.get("knockoffs", {}).get("copies", 1)
        return int(value) if value != "auto" else 1

    @property
    def combine_text(self) -> str:
        sel = self.config.get("selection", {})
        if sel.get("combine", "first") == "mean":
            return "the importances of draw 0's training seeds averaged"
        return "the first run alone, as in the paper"

    @property
    def recommended(self) -> str:
        return self.run.get("recommended_filter") or "VWA-OL"

    @property
    def runs(self) -> list[tuple[int, int]]:
        """(draw, seed) pairs in a stable order; the first is the reference run of the plots."""
        df = self.statistics[["draw", "seed"]].drop_duplicates()
        return sorted((int(d), int(s)) for d, s in df.itertuples(index=False))

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta.get("classes") or []]

    def selected_by(self, flt: str) -> list[str]:
        return self.selected.loc[self.selected["filter"] == flt, "feature"].astype(str).tolist()


def load_results(files: ResultFiles | Path | str) -> Results:
    """Read the result tables into typed frames (booleans and ∞ parsed consistently)."""
    if not isinstance(files, ResultFiles):
        files = ResultFiles.from_dir(files)
    stats = pd.read_csv(files.statistics, sep="\t")
    stats["selected"] = _as_bool(stats["selected"])
    stats["feature"] = stats["feature"].astype(str)
    for col in ("z", "z_knockoff", "W", "qvalue", "evalue", "threshold"):
        if col in stats:
            stats[col] = _as_float(stats[col])
    thr = pd.read_csv(files.thresholds, sep="\t", keep_default_na=True)
    thr["T"] = _as_float(thr["T"])
    note = thr["note"] if "note" in thr else pd.Series("", index=thr.index)
    thr["note"] = [n if isinstance(n, str) else "" for n in note]
    sel = pd.read_csv(files.selected, sep="\t")
    sel["feature"] = sel["feature"].astype(str)
    feats = pd.read_csv(files.features, sep="\t")
    feats["feature"] = feats["feature"].astype(str)
    for col in [c for c in feats if c.startswith("selected_")]:
        feats[col] = _as_bool(feats[col])
    return Results(
        files=files,
        meta=json.loads(Path(files.meta).read_text()),
        run=json.loads(Path(files.run).read_text()) if files.run is not None else {},
        labels=_read_tsv(files.labels),
        diagnostics=_read_diagnostics(files.diagnostics),
        paths=_read_paths(files.paths),
        statistics=stats,
        thresholds=thr,
        selected=sel,
        features=feats,
        structure=_read_tsv(files.structure),
        summary=_read_tsv(files.summary),
        prediction=_read_tsv(files.prediction),
    )


def ebh_settings(config: dict[str, Any]) -> dict[str, Any]:
    """e-BH's `alpha_kn` and `statistic` from a run's config: `selection.ebh`, or the flat
    `selection.ebh_alpha` / `ebh_statistic` keys of results made before that block."""
    sel = config.get("selection", {})
    opts = sel.get("ebh") or {}
    return {
        "alpha_kn": opts.get("alpha_kn", sel.get("ebh_alpha")),
        "statistic": opts.get("statistic") or sel.get("ebh_statistic"),
    }


def run_label(draw: int, seed: int) -> str:
    return f"draw {draw}, seed {seed}"


def run_threshold(res: Results, flt: str, run: tuple[int, int]) -> float:
    """T of one single run of OL or ML (∞ when it selected nothing)."""
    t = res.thresholds
    if "scope" in t:
        t = t[t["scope"] == "run"]
    rows = t[(t["filter"] == flt) & (t["draw"] == run[0]) & (t["seed"] == run[1])]
    if len(rows):
        return float(rows["T"].iloc[0])
    s = res.statistics
    rows = s[(s["filter"] == flt) & (s["draw"] == run[0]) & (s["seed"] == run[1])]
    return float(rows["threshold"].iloc[0]) if len(rows) else math.inf


def run_stats(res: Results, flt: str, run: tuple[int, int]) -> pd.DataFrame:
    s = res.statistics
    return s[(s["filter"] == flt) & (s["draw"] == run[0]) & (s["seed"] == run[1])]
