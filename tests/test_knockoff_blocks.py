"""Block-wise knockoff draws for wide cohorts (issue 16): blocks, validity, errors, wiring."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from knockoffnet.errors import InputError
from knockoffnet.knockoff_blocks import (
    block_order,
    boundary_corr,
    correlation_links,
    correlation_order,
    load_links,
    resolve_block_order,
    sampling_blocks,
    save_links,
)
from knockoffnet.knockoffs import FULL_SAMPLING_MAX_P, make_knockoffs, resolve_sampling

from conftest import snakemake, write_config, write_plink


def _ar1_blocks(n: int, sizes: list[int], rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent AR(1) blocks: X standardised (float32) and the true correlation Σ."""
    rng = np.random.default_rng(seed)
    parts, p = [], sum(sizes)
    Sigma = np.zeros((p, p))
    start = 0
    for b in sizes:
        Z = rng.standard_normal((n, b))
        for j in range(1, b):
            Z[:, j] = rho * Z[:, j - 1] + np.sqrt(1 - rho**2) * Z[:, j]
        parts.append(Z)
        idx = np.arange(b)
        Sigma[start : start + b, start : start + b] = rho ** np.abs(idx[:, None] - idx[None, :])
        start += b
    X = np.hstack(parts)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), Sigma


def test_blocks_are_contiguous_bounded_and_cut_at_chromosomes() -> None:
    blocks = sampling_blocks(2500, 1000)
    assert [b.stop - b.start for b in blocks] == [833, 834, 833]  # no small remainder
    chrom = ["1"] * 1200 + ["2"] * 300 + ["X"] * 1000
    blocks = sampling_blocks(2500, 1000, chrom)
    assert blocks[0].start == 0 and blocks[-1].stop == 2500
    assert all(a.stop == b.start for a, b in itertools.pairwise(blocks))
    assert all(0 < b.stop - b.start <= 1000 for b in blocks)
    assert {1200, 1500} <= {b.start for b in blocks}  # a block never spans two chromosomes
    assert all(len(set(chrom[b.start : b.stop])) == 1 for b in blocks)
    with pytest.raises(InputError, match="chromosome labels"):
        sampling_blocks(10, 5, ["1"] * 9)


def test_cuts_fall_where_the_correlation_across_them_is_weakest() -> None:
    """Two independent AR(1) chains side by side (70 and 80 columns, ρ = 0.7): with the data
    the cut goes exactly between them, not at the equal split (75)."""
    X, _ = _ar1_blocks(2_000, [70, 80], 0.7, seed=4)
    assert sampling_blocks(150, 100) == [slice(0, 75), slice(75, 150)]
    assert sampling_blocks(150, 100, X=X) == [slice(0, 70), slice(70, 150)]
    rows = np.arange(0, 2_000, 2)
    assert sampling_blocks(150, 100, X=X, rows=rows) == [slice(0, 70), slice(70, 150)]
    assert boundary_corr(X, [slice(0, 70), slice(70, 150)]) < 0.1


def test_auto_draws_wide_cohorts_by_blocks_and_refuses_what_blocks_cannot_do() -> None:
    assert resolve_sampling("auto", FULL_SAMPLING_MAX_P) == "full"
    assert resolve_sampling("auto", FULL_SAMPLING_MAX_P + 1) == "blocks"
    assert resolve_sampling("auto", 50_000, method="fixed-x") == "full"
    with pytest.raises(InputError, match=r"knockoffs\.sampling: blocks"):
        resolve_sampling("blocks", 100, method="fixed-x")
    with pytest.raises(InputError, match=r"knockoffs\.sampling"):
        resolve_sampling("chunks", 100)


def test_blocks_never_cut_through_a_group() -> None:
    """Cuts fall only between groups (a group's members may be anywhere in the block, not
    only side by side); a group too long for max_block, or on two chromosomes, is an error
    naming two of its members."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), rng.integers(1, 8, 60))[:300]
    groups[[40, 45]] = groups[[45, 40]]  # members interleaved with a neighbour group
    X, _ = _ar1_blocks(500, [groups.size], 0.5, seed=5)
    for data in (None, X):
        blocks = sampling_blocks(groups.size, 25, X=data, groups=groups)
        assert blocks[0].start == 0 and blocks[-1].stop == groups.size
        assert all(a.stop == b.start for a, b in itertools.pairwise(blocks))
        assert all(0 < b.stop - b.start <= 25 for b in blocks)
        owner = np.concatenate([np.full(b.stop - b.start, i) for i, b in enumerate(blocks)])
        for g in np.unique(groups):
            assert np.unique(owner[groups == g]).size == 1, g
    spread = np.arange(40) // 2
    spread[[3, 30]] = 99  # columns 3 and 30 in one group: 28 columns apart
    names = [f"v{j}" for j in range(40)]
    with pytest.raises(InputError, match=r"group of v\d+ and v\d+ .*spans more than .*= 20"):
        sampling_blocks(40, 20, groups=spread, names=names)
    chrom = ["1"] * 20 + ["2"] * 20
    pairs = np.arange(40) // 2
    pairs[[19, 20]] = 50  # one group on both chromosomes
    with pytest.raises(InputError, match="group of v19 and v20 has members on two chromosomes"):
        sampling_blocks(40, 30, chrom, groups=pairs, names=names)
    assert sampling_blocks(40, 30, chrom, groups=np.arange(40) // 2) == [
        slice(0, 20),
        slice(20, 40),
    ]


def test_a_grouped_block_draw_keeps_each_group_exchangeable() -> None:
    """Group knockoffs drawn block by block on three independent AR(1) blocks with groups of
    three neighbours: on 40,000 rows cov(x_j, x~_k) equals Σ_jk wherever j and k are in
    different groups (S is block-diagonal by group, inside one block), X~ has X's
    correlation, and the group swap test sees nothing."""
    X, Sigma = _ar1_blocks(40_000, [30, 30, 30], 0.8, seed=6)
    p = X.shape[1]
    groups = np.arange(p) // 3
    Xk, s, info = make_knockoffs(X, max_block=30, seed=2, sampling="blocks", groups=groups)
    assert info["sampling"] == "blocks" and info["blocks"] == 3 and info["groups"] == p // 3
    assert not info["flag"], info["message"]
    C = np.corrcoef(np.hstack([X, Xk]).T.astype(np.float64))
    cross, kk = C[:p, p:], C[p:, p:]
    other_group = groups[:, None] != groups[None, :]
    assert np.abs(cross - Sigma)[other_group].max() < 0.04
    assert np.abs(kk - Sigma).max() < 0.04
    same = ~other_group & ~np.eye(p, dtype=bool)
    assert np.abs(cross - Sigma)[same].max() > 0.05  # S has off-diagonal group entries
    assert np.allclose(np.diag(cross), 1 - s, atol=0.04)
    again, _, _ = make_knockoffs(X, max_block=30, seed=2, sampling="blocks", groups=groups)
    assert np.array_equal(Xk, again)
    # groups that do not fit the blocks are refused before any drawing
    with pytest.raises(InputError, match=r"spans more than knockoffs\.max_block = 10"):
        make_knockoffs(X, max_block=10, seed=2, sampling="blocks", groups=np.arange(p) // 12)


def test_a_block_draw_is_exchangeable_when_the_blocks_are_independent() -> None:
    """Three independent AR(1) blocks drawn block by block: on 40,000 rows the joint
    correlation of [X, X~] matches [[Σ, Σ − S], [Σ − S, Σ]] in every cell, across blocks too
    (where Σ is 0), and the diagnostics see no problem; the same seed repeats the draw."""
    X, Sigma = _ar1_blocks(40_000, [40, 40, 40], 0.6, seed=1)
    Xk, s, info = make_knockoffs(X, max_block=40, seed=7, sampling="blocks")
    assert info["sampling"] == "blocks" and info["blocks"] == 3 and not info["flag"]
    assert info["max_cross_block_corr"] < 0.05
    p = X.shape[1]
    C = np.corrcoef(np.hstack([X, Xk]).T.astype(np.float64))
    target = np.block([[Sigma, Sigma - np.diag(s)], [Sigma - np.diag(s), Sigma]])
    assert np.abs(C - target).max() < 0.04  # 40,000 rows: sampling error about 0.005
    assert 0.2 < s.mean() < 1.0
    again, s2, _ = make_knockoffs(X, max_block=40, seed=7, sampling="blocks")
    assert np.array_equal(Xk, again) and np.array_equal(s, s2)
    other, _, _ = make_knockoffs(X, max_block=40, seed=8, sampling="blocks")
    assert not np.array_equal(Xk, other)
    # κ copies: every pair of copies, and each copy with X, has cross-correlation Σ − S
    Xk3, s3, info3 = make_knockoffs(X, max_block=40, seed=7, sampling="blocks", copies=3)
    assert Xk3.shape == (X.shape[0], 3 * p) and info3["copies"] == 3
    C3 = np.corrcoef(np.hstack([X, Xk3]).T.astype(np.float64))
    off = Sigma - np.diag(s3)
    for a, b in ((0, 1), (0, 3), (1, 2), (2, 3)):
        block = C3[a * p : (a + 1) * p, b * p : (b + 1) * p]
        assert np.abs(block - off).max() < 0.04, (a, b)


def test_the_diagnostics_report_what_the_blocks_do_not_carry() -> None:
    """One AR(1) chain cut into blocks: the correlation across each cut (ρ = 0.8 between the
    neighbouring columns) is what the draw ignores; the diagnostics say how large and flag it."""
    X, _ = _ar1_blocks(5_000, [90], 0.8, seed=2)
    blocks = sampling_blocks(90, 30)
    assert boundary_corr(X, blocks) == pytest.approx(0.8, abs=0.05)
    _, _, info = make_knockoffs(X, max_block=30, seed=1, sampling="blocks")
    assert info["max_cross_block_corr"] == pytest.approx(0.8, abs=0.05)
    assert info["flag"]  # above 0.5: exchangeability is approximate next to the cuts
    assert "correlations across blocks are not carried" in str(info["message"])
    message = str(info["message"])
    assert (
        f"{info['max_cross_block_corr']:.2f}" in message and "raise knockoffs.max_block" in message
    )


def _runs(order: np.ndarray, labels: np.ndarray) -> int:
    """How many runs of equal labels the order makes (one per label when each is together)."""
    seq = labels[order]
    return 1 + int(np.sum(seq[1:] != seq[:-1]))


def test_the_correlation_order_makes_shuffled_clusters_neighbours() -> None:
    """40 clusters of 5 features (r = 0.9) with their columns shuffled: in the correlation
    order each cluster is one run of 5 positions; a group (here two clusters joined) stays
    one run; each chromosome is one run, in the order of its first column; a PLINK cohort
    (chromosomes known) keeps its columns under `auto`; the order is deterministic."""
    rng = np.random.default_rng(4)
    n, p = 1000, 200
    shared = rng.standard_normal((n, p // 5))
    X = np.sqrt(0.9) * np.repeat(shared, 5, axis=1) + np.sqrt(0.1) * rng.standard_normal((n, p))
    shuffle = rng.permutation(p)
    X, cluster = X[:, shuffle], (np.arange(p) // 5)[shuffle]
    order = correlation_order(X)
    assert np.array_equal(np.sort(order), np.arange(p))
    assert _runs(order, cluster) == p // 5
    assert np.array_equal(order, correlation_order(X.copy()))
    groups = cluster // 2  # clusters 0-1, 2-3, ... as groups of 10
    assert _runs(correlation_order(X, groups=groups), groups) == p // 10
    chrom = np.where(np.arange(p) < 120, "2", "1")  # chromosome 2 holds the first columns
    by_chrom = correlation_order(X, chromosomes=chrom)
    assert list(chrom[by_chrom][[0, -1]]) == ["2", "1"] and _runs(by_chrom, chrom) == 2
    assert np.array_equal(block_order("auto", X, chromosomes=chrom), np.arange(p))
    assert np.array_equal(block_order("correlation", X, chromosomes=chrom), by_chrom)
    assert np.array_equal(block_order("columns", X), np.arange(p))
    assert resolve_block_order("auto") == "correlation"
    with pytest.raises(InputError, match=r"knockoffs\.block_order must be one of"):
        resolve_block_order("genome")


def test_stored_links_give_the_same_order_and_draw(tmp_path: Path) -> None:
    """The workflow computes the correlation links once per cohort (rule
    `correlation_links`) and hands them to the groups rule and every draw: the order and
    the draw from stored links equal those computed in place (n ≤ the diagnostics' rows, so
    both read every row), groups and chromosomes still applied on top; `None` round-trips
    as "not computed"."""
    rng = np.random.default_rng(11)
    n, p = 600, 60
    shared = rng.standard_normal((n, p // 3))
    X = np.repeat(shared, 3, axis=1) + 0.4 * rng.standard_normal((n, p))
    X = ((X - X.mean(0)) / X.std(0))[:, rng.permutation(p)]
    path = tmp_path / "links.npz"
    save_links(path, correlation_links(X))
    links = load_links(path)
    groups = np.arange(p) // 4
    chrom = np.where(np.arange(p) < 25, "1", "2")
    assert np.array_equal(correlation_order(X, links=links), correlation_order(X))
    assert np.array_equal(
        correlation_order(X, groups=groups, links=links), correlation_order(X, groups=groups)
    )
    by_chrom = correlation_links(X, chromosomes=chrom)
    assert not np.any(chrom[by_chrom.src] != chrom[by_chrom.dst])
    kw = {"sampling": "blocks", "max_block": 15, "seed": 5, "block_order": "correlation"}
    Xk, s, diag = make_knockoffs(X, **kw)
    Xk2, s2, diag2 = make_knockoffs(X, **kw, links=links)
    assert np.array_equal(Xk, Xk2) and np.array_equal(s, s2) and diag == diag2
    save_links(path, None)
    assert load_links(path) is None


def test_a_shuffled_table_is_drawn_exchangeably_only_in_correlation_order() -> None:
    """Twelve independent AR(1) clusters of 5 (ρ = 0.8) with shuffled columns, blocks of at
    most 10: cut from the correlation order every block holds whole clusters, so on 40,000
    rows cov(x_j, x~_k) = Σ_jk in every cell and nothing is flagged; cut from the columns as
    given the blocks split clusters, the draw drops correlations of 0.8 (flagged) and the
    knockoffs miss them."""
    X, Sigma = _ar1_blocks(40_000, [5] * 12, 0.8, seed=5)
    p = X.shape[1]
    shuffle = np.random.default_rng(5).permutation(p)
    X, Sigma = np.ascontiguousarray(X[:, shuffle]), Sigma[np.ix_(shuffle, shuffle)]
    Xk, s, info = make_knockoffs(X, max_block=10, seed=3, sampling="blocks")
    assert info["block_order"] == "correlation" and info["blocks"] >= 6
    assert not info["flag"] and info["max_cross_block_corr"] < 0.05, info["message"]
    assert "cut from the correlation order" in str(info["message"])
    C = np.corrcoef(np.hstack([X, Xk]).T.astype(np.float64))
    target = np.block([[Sigma, Sigma - np.diag(s)], [Sigma - np.diag(s), Sigma]])
    assert np.abs(C - target).max() < 0.04
    Xc, sc, given = make_knockoffs(
        X, max_block=10, seed=3, sampling="blocks", block_order="columns"
    )
    assert given["block_order"] == "columns" and given["flag"]
    assert given["max_cross_block_corr"] > 0.5
    Cc = np.corrcoef(np.hstack([X, Xc]).T.astype(np.float64))[:p, p:]
    assert np.abs(Cc - (Sigma - np.diag(sc))).max() > 0.3


def test_block_errors_name_the_column_of_the_whole_cohort() -> None:
    X, _ = _ar1_blocks(500, [20, 20], 0.3, seed=3)
    X[:, 27] = 1.0  # in the second block
    with pytest.raises(InputError, match=r"column\(s\) 27 are constant"):
        make_knockoffs(X, max_block=20, seed=0, sampling="blocks")
    X[:, 27] = X[:, 25]
    with pytest.raises(InputError, match="columns 25 and 27 are identical"):
        make_knockoffs(X, max_block=20, seed=0, sampling="blocks")


def test_workflow_draws_a_plink_cohort_by_blocks_per_chromosome(tmp_path: Path) -> None:
    """`knockoffs.sampling: blocks` through the workflow: a PLINK cohort's two chromosomes of
    15 variants with max_block 10 make four blocks, none spanning both chromosomes."""
    prefix, pheno, _ = write_plink(tmp_path, n=300, p=30)
    config = {
        "cohorts": {"geno": {"plink": prefix.name, "pheno": pheno.name, "label": "case"}},
        "knockoffs": {"sampling": "blocks", "max_block": 10, "copies": 2},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/geno/knockoffs/draw0_diagnostics.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "geno" / "knockoffs"
    diag = pd.read_csv(out / "draw0_diagnostics.tsv", sep="\t").iloc[0]
    assert diag["sampling"] == "blocks" and diag["blocks"] == 4 and diag["copies"] == 2
    assert 0 <= diag["max_cross_block_corr"] < 1
    Xk = np.load(out / "draw0.npy")
    assert Xk.shape == (295, 60) and Xk.dtype == np.float32
    assert np.allclose(Xk.mean(0), 0, atol=1e-4) and np.allclose(Xk.std(0), 1, atol=1e-3)


def test_workflow_clusters_and_draws_groups_inside_blocks(tmp_path: Path) -> None:
    """`groups: auto` with a block-wise draw through the workflow: a PLINK cohort of 40
    variants on two chromosomes in LD pairs (|r| about 0.8) and max_block 12: the groups rule
    clusters within the draw's blocks, so the pairs become groups, none crossing a block or a
    chromosome, and the draw is a group draw in at least two blocks a chromosome."""
    from bed_reader import to_bed

    rng = np.random.default_rng(3)
    n, p = 400, 40
    base = rng.binomial(2, 0.3, size=(n, p // 2)).astype(np.float32)
    G = np.repeat(base, 2, axis=1)
    flip = rng.random(G.shape) < 0.1  # about 10 % of genotypes redrawn: LD r ≈ 0.8
    G[flip] = rng.binomial(2, 0.3, size=int(flip.sum()))
    iids = [f"id{i}" for i in range(n)]
    to_bed(
        str(tmp_path / "geno.bed"), G,
        properties={"iid": iids, "fid": iids, "sid": [f"rs{j}" for j in range(p)],
                    "chromosome": ["1"] * 20 + ["2"] * 20,
                    "bp_position": list(range(1000, 1000 + 100 * p, 100))},
    )  # fmt: skip
    y = (G[:, 0] - G[:, 10] + rng.normal(0, 1, n) > 0).astype(int)
    pd.DataFrame({"IID": iids, "case": y}).to_csv(tmp_path / "pheno.tsv", sep="\t", index=False)
    config = {
        "cohorts": {"geno": {"plink": "geno", "pheno": "pheno.tsv", "label": "case"}},
        "knockoffs": {"sampling": "blocks", "max_block": 12, "groups": "auto"},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/geno/knockoffs/draw0_diagnostics.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    groups = pd.read_csv(tmp_path / "results" / "geno" / "groups.tsv", sep="\t")
    labels = groups.set_index("feature").loc[[f"rs{j}" for j in range(p)], "group"].to_numpy()
    assert (labels[0::2] == labels[1::2]).all() and len(set(labels)) == p // 2  # the LD pairs
    log = (tmp_path / "logs" / "geno" / "groups.log").read_text()
    assert re.search(r"clustering within \d+ blocks of at most 12", log), log
    diag = pd.read_csv(tmp_path / "results/geno/knockoffs/draw0_diagnostics.tsv", sep="\t")
    assert diag.loc[0, "sampling"] == "blocks" and diag.loc[0, "groups"] == p // 2
    assert diag.loc[0, "blocks"] >= 4  # 20 variants a chromosome, at most 12 a block
    Xk = np.load(tmp_path / "results/geno/knockoffs/draw0.npy")
    assert Xk.shape[1] == diag.loc[0, "copies"] * p and np.isfinite(Xk).all()


def test_workflow_groups_and_draws_a_shuffled_table_in_correlation_order(tmp_path: Path) -> None:
    """A table cohort whose correlated pairs sit far apart (x_j with x_{j+20}, |r| ≈ 0.9)
    drawn in blocks of at most 12 with `groups: auto`: the groups rule and the draw order
    the features by correlation, so every pair becomes a group inside one block, which the
    column order (blocks of neighbouring columns, no pair inside one) could not do."""
    rng = np.random.default_rng(8)
    n, half = 400, 20
    base = rng.standard_normal((n, half))
    X = np.hstack([base, 0.95 * base + 0.3 * rng.standard_normal((n, half))])
    y = (X[:, 0] - X[:, 5] + rng.normal(0, 1, n) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(2 * half)]).assign(y=y)
    frame.to_csv(tmp_path / "table.csv", index=False)
    config = {
        "cohorts": {"tab": {"path": "table.csv", "label": "y"}},
        "knockoffs": {"sampling": "blocks", "max_block": 12, "groups": "auto"},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/tab/knockoffs/draw0_diagnostics.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    groups = pd.read_csv(tmp_path / "results" / "tab" / "groups.tsv", sep="\t")
    labels = groups.set_index("feature").loc[frame.columns[:-1], "group"].to_numpy()
    assert (labels[:half] == labels[half:]).all() and len(set(labels)) == half
    diag = pd.read_csv(tmp_path / "results/tab/knockoffs/draw0_diagnostics.tsv", sep="\t")
    row = diag.iloc[0]
    assert row["block_order"] == "correlation" and row["groups"] == half
    links = load_links(tmp_path / "results/tab/knockoffs/correlation_links.npz")
    assert links is not None and links.src.size == 2 * half * 10  # 10 links a feature
    assert row["blocks"] >= 4 and row["max_cross_block_corr"] < 0.3 and not row["flag"]
    # the order is part of a block-wise draw: changing it redoes the groups and the draw
    target = "results/tab/knockoffs/draw0_diagnostics.tsv"
    change = ["--config", 'knockoffs={"block_order": "columns"}']
    again = snakemake(tmp_path, "-n", target, *change)
    assert again.returncode == 0 and re.search(r"^knockoffs\s+1$", again.stdout, re.M)
    assert re.search(r"^groups\s+1$", again.stdout, re.M), again.stdout[-2000:]
    assert re.search(r"^correlation_links\s+1$", again.stdout, re.M)
    # a joint draw (sampling: full) does not read it: the same change redoes nothing
    write_config(tmp_path, {**config, "knockoffs": {"sampling": "full", "groups": "auto"}})
    assert snakemake(tmp_path, target).returncode == 0
    joint = snakemake(tmp_path, "-n", target, *change)
    assert joint.returncode == 0 and "Nothing to be done" in joint.stdout + joint.stderr
    assert load_links(tmp_path / "results/tab/knockoffs/correlation_links.npz") is None
