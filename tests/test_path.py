"""Tests of the λ-path trainer and Z (knockoffnet.path); small sizes, one thread."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from knockoffnet import grid as G
from knockoffnet import path as P
from knockoffnet.errors import InputError
from knockoffnet.importance import group_z
from knockoffnet.network import loss_rows, net_from_arrays, predict

P_FEAT = 10


def _quiet(msg: str) -> None:
    del msg


def _cohort(n: int = 400, seed: int = 0, task: str = "binary"):
    """X with 3 planted signals (0, 1, 2), independent stand-in knockoffs, U = [X, Xk]."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P_FEAT))
    Xk = rng.standard_normal((n, P_FEAT))
    f = 2.0 * X[:, 0] - 2.0 * X[:, 1] + 1.5 * X[:, 2] * X[:, 0] + 1.5 * X[:, 2]
    if task == "binary":
        y = (rng.random(n) < 1 / (1 + np.exp(-f))).astype(np.int64)
    elif task == "multiclass":
        y = np.digitize(f + 0.5 * rng.standard_normal(n), [-1.0, 1.0]).astype(np.int64)
    else:
        y = f + 0.5 * rng.standard_normal(n)
    return np.hstack([X, Xk]), y


def _cfg(**kw) -> P.TrainConfig:
    """Fixed early stopping, Adam's fixed step and a free dense fit (the mechanics, not the
    auto rules)."""
    base = dict(
        hidden=(16,),
        patience=20,
        max_epochs=120,
        learning_rate=None,
        dense_coupling="none",
        threads=1,
        device="cpu",
    )
    return P.TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def binary_run():
    U, y = _cohort()
    cfg = _cfg()
    grid = G.lambda_grid(U, y, cfg, seed=1, count=6, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
    return U, y, cfg, grid, res


# ----------------------------------------------------------------------------- building blocks


def test_split_is_stratified_disjoint_and_fixed_per_seed():
    y = np.array([0] * 80 + [1] * 20)
    cfg = _cfg()
    tr, va = P.split_indices(y, cfg, seed=3)
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).size == y.size
    assert (y[va] == 1).sum() == 4 and (y[va] == 0).sum() == 16
    _, va2 = P.split_indices(y, cfg, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, P.split_indices(y, cfg, seed=4)[1])


# ----------------------------------------------------------------------------- Z and the path


def test_z_of_signals_exceeds_z_of_noise_on_the_papers_path():
    U, y = _cohort()
    cfg = _cfg(units=0, penalty="l1", optimizer="fista", batch_size=0, start="cold")
    grid = G.lambda_grid(U, y, cfg, seed=1, count=6, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
    z0 = P.z_statistics(res["lambdas"], [res["W0"], res["W1"]])[0]
    per_input = z0.sum(0)  # column j = input j: x_1..x_p, then the knockoffs
    signal = per_input[[0, 1, 2]]
    noise = np.delete(per_input, [0, 1, 2])
    assert signal.mean() > 1.2 * noise.mean()
    assert signal.min() > np.median(noise)


def test_warm_path_importances_rank_signals_first():
    from knockoffnet.importance import run_importances

    U, y = _cohort(seed=4)
    cfg = _cfg()
    start = net_from_arrays(P.dense_fit(U, y, cfg, seed=2, log=_quiet), 0)
    grid = G.lambda_grid(U, y, cfg, seed=2, count=6, ratio=1e-2, start=start, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=2, start=start, log=_quiet)
    chosen = int(np.nanargmin(res["val_loss"]))
    z0 = group_z(P.z_statistics(grid, [res["W0"]])[0], U.shape[1])
    imp = run_importances(net_from_arrays(res, chosen), z0, U, P_FEAT, "relu")
    for key in ("importance_ol", "importance_ml"):
        top3 = np.argsort(-imp[key])[:3]
        assert set(top3) == {0, 1, 2}, key


def test_grid_from_a_warm_start_without_gradient_at_zero():
    """A large step leaves a dense fit that predicts well but whose hidden units are all off
    once its first layer is zeroed (λ0 there is 0; the grid step used to stop the run with
    "the loss gradient at the start is 0.0", seen on a 50,000 × 1,000 genotype cohort). λ0
    then comes from the seed's initialisation, and the grid's top still zeroes the first
    layer when trained from the warm start."""
    rng = np.random.default_rng(0)
    U = rng.standard_normal((400, 20)).astype(np.float32)
    y = (U[:, 0] + 0.5 * rng.standard_normal(400) > 0).astype(np.float32)
    cfg = P.TrainConfig(max_epochs=5, patience=2, learning_rate=0.3, device="cpu")
    start = net_from_arrays(P.dense_fit(U, y, cfg, seed=1, log=_quiet), 0)
    with P.prepared(U, y, cfg, 1, _quiet) as data:
        assert G.lambda_zero(data, cfg, P.start_net(start, data, cfg, 1)) == 0.0
    messages: list[str] = []
    grid = G.lambda_grid(U, y, cfg, seed=1, count=5, start=start, log=messages.append)
    assert any("initialisation instead" in m for m in messages)
    assert np.all(np.isfinite(grid)) and np.all(grid > 0) and np.all(np.diff(grid) < 0)
    res = P.train_path(U, y, grid[:1], cfg, seed=1, start=start, log=_quiet)
    assert np.count_nonzero(res["W0"][0]) == 0


def test_grid_check_stops_the_lambdas_above_two_that_zeroed_the_features():
    """Once two λ of the grid check have kept every feature at zero for GRID_ZERO_CHECKS
    checks, the larger λ stop (they used to train a patience window on a flat objective);
    the two, which may still regrow features, and every smaller λ train exactly as before,
    so the check's answer is the same."""
    U, y = _cohort(n=400, seed=5)
    cfg = _cfg(max_epochs=60, patience=20)
    with P.prepared(U, y, cfg, 1, _quiet) as data:
        start = P.start_net(None, data, cfg, 1)
        cands = G.lambda_zero(data, cfg, start) * G.GRID_FACTOR ** np.arange(G.GRID_TRIES)
        full = P.train_batched(data, cands, cfg, 1, start, _quiet)
        quick = P.train_batched(data, cands, cfg, 1, start, _quiet, G.GridCheck(G.GRID_ZERO_CHECKS))
    zero = full["inputs_alive"] == 0
    first = int(np.argmax(zero))
    assert zero[first:].all() and cands.size - first >= 3  # λ0 keeps features, 3+ zero them
    kept = slice(0, first + 2)
    for key in ("W0", "epochs", "best_epoch", "val_objective", "inputs_alive"):
        assert np.array_equal(quick[key][kept], full[key][kept]), key
    above = slice(first + 2, None)
    assert (quick["epochs"][above] < full["epochs"][above]).all()
    assert (quick["inputs_alive"][above] == 0).all()


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_constant_loss_is_the_smallest_any_constant_output_scores(task):
    """The floor of the grid check: no constant output scores below constant_loss, and the
    optimal constant (mean, log-frequencies, logit of the rate) scores it."""
    _, y = _cohort(n=300, seed=2, task=task)
    yt = torch.as_tensor(y.astype(np.float32) if task == "regression" else y)
    floor = G.constant_loss(yt, task)

    def mean_loss(c: np.ndarray) -> float:
        out = torch.as_tensor(np.broadcast_to(c, (1, y.size, c.size)).copy(), dtype=torch.float32)
        return float(loss_rows(out, yt, task).double().mean())

    if task == "regression":
        best = np.array([y.mean()])
    elif task == "binary":
        best = np.array([np.log(y.mean() / (1 - y.mean()))])
    else:
        best = np.log(np.bincount(y) / y.size)
    assert mean_loss(best) == pytest.approx(floor, rel=1e-6)
    rng = np.random.default_rng(0)
    for c in best + rng.normal(0, 0.5, (200, best.size)):
        assert mean_loss(c) >= floor * (1 - 1e-6)


def test_grid_check_stops_lambdas_that_keep_features_below_the_floor_with_the_same_answer():
    """Without covariates a λ whose best validation objective is below the best constant's
    loss can never end all zero: the check stops it at once (the λ0 probe used to run to the
    cap), and every answer, and the grid, are what training on gives."""
    U, y = _cohort(n=400, seed=5)
    cfg = _cfg(max_epochs=60, patience=20)
    with P.prepared(U, y, cfg, 1, _quiet) as data:
        start = P.start_net(None, data, cfg, 1)
        cands = G.lambda_zero(data, cfg, start) * G.GRID_FACTOR ** np.arange(G.GRID_TRIES)
        cands = np.concatenate([cands[:1] / 8, cands[:1] / 2, cands])  # more λ that keep
        floor = G.constant_loss(data.y_val, cfg.task)
        plain = P.train_batched(data, cands, cfg, 1, start, _quiet, G.GridCheck(G.GRID_ZERO_CHECKS))
        check = G.GridCheck(G.GRID_ZERO_CHECKS, floor=floor)
        quick = P.train_batched(data, cands, cfg, 1, start, _quiet, check)
    keeps = plain["inputs_alive"] > 0
    assert keeps.sum() >= 2
    assert np.array_equal(quick["inputs_alive"] == 0, plain["inputs_alive"] == 0)
    assert (quick["epochs"][keeps] < plain["epochs"][keeps]).all()
    assert (quick["val_objective"][keeps] < floor).all()
    zeroes = ~keeps
    for key in ("W0", "epochs", "val_objective"):
        assert np.array_equal(quick[key][zeroes], plain[key][zeroes]), key


def test_lambda_grid_is_the_same_with_and_without_the_floor(monkeypatch):
    U, y = _cohort(n=400, seed=5)
    cfg = _cfg(max_epochs=60, patience=20)
    start = net_from_arrays(P.dense_fit(U, y, cfg, seed=1, log=_quiet), 0)
    with_floor = G.lambda_grid(U, y, cfg, seed=1, count=5, start=start, log=_quiet)
    monkeypatch.setattr(G, "constant_loss", lambda y, task: -np.inf)
    without = G.lambda_grid(U, y, cfg, seed=1, count=5, start=start, log=_quiet)
    assert np.array_equal(with_floor, without)


def test_grid_check_floor_with_covariates_comes_from_a_converged_zeroed_candidate():
    """With covariates a zeroed network still models them, so the floor is (1 − margin) × the
    best objective of a candidate that zeroed the tested inputs and stopped by patience."""
    U, y = _cohort(n=400, seed=5)
    cov = np.random.default_rng(9).standard_normal((U.shape[0], 1))
    U = np.hstack([U, cov])
    cfg = _cfg(max_epochs=60, patience=20, covariates=1)
    with P.prepared(U, y, cfg, 1, _quiet) as data:
        start = P.start_net(None, data, cfg, 1)
        cands = G.lambda_zero(data, cfg, start) * G.GRID_FACTOR ** np.arange(G.GRID_TRIES)
        plain = P.train_batched(data, cands, cfg, 1, start, _quiet, G.GridCheck(G.GRID_ZERO_CHECKS))
        check = G.GridCheck(G.GRID_ZERO_CHECKS)
        quick = P.train_batched(data, cands, cfg, 1, start, _quiet, check)
    converged = (plain["inputs_alive"] == 0) & (plain["epochs"] - plain["best_epoch"] >= 20)
    assert converged.any() and check.floor is not None
    expected = plain["val_objective"][converged].min() * (1 - G.GRID_FLOOR_MARGIN)
    assert check.floor == pytest.approx(expected, rel=1e-12)
    assert np.array_equal(quick["inputs_alive"] == 0, plain["inputs_alive"] == 0)
    keeps = plain["inputs_alive"] > 0
    assert (quick["epochs"][keeps] <= plain["epochs"][keeps]).all()


def test_result_keys_shapes_and_records(binary_run):
    U, _, cfg, grid, res = binary_run
    n_lam = grid.size
    assert res["W0"].shape == (n_lam, 16, U.shape[1] * (cfg.units + 1))
    assert res["W0"].dtype == np.float32 and res["unit_a"].shape == (n_lam, U.shape[1], cfg.units)
    assert res["W1"].shape == (n_lam, 1, 16) and res["b1"].shape == (n_lam, 1)
    assert res["nnz"].shape == (n_lam, 2)
    assert res["curve_val_loss"].shape == (n_lam, cfg.max_epochs)
    for j in range(n_lam):
        e, b = res["epochs"][j], res["best_epoch"][j]
        assert 1 <= b <= e <= cfg.max_epochs
        assert np.isfinite(res["curve_val_loss"][j, :e]).all()
        assert np.isnan(res["curve_val_loss"][j, e:]).all()
        assert res["val_loss"][j] == res["curve_val_loss"][j, b - 1]
    assert ((res["val_accuracy"] >= 0) & (res["val_accuracy"] <= 1)).all()
    assert np.array_equal(res["nnz"][:, 0], (res["W0"] != 0).sum((1, 2)))
    groups = res["W0"].reshape(n_lam, 16, U.shape[1], cfg.units + 1)
    alive = (groups != 0).any(axis=(1, 3))
    assert np.array_equal(res["inputs_alive"], alive.sum(1))


def test_grid_is_descending_geometric_and_its_top_zeroes_the_first_layer(binary_run):
    _, _, _, grid, res = binary_run
    assert np.all(np.diff(grid) < 0)
    assert np.isclose(grid[-1] / grid[0], 1e-2)
    assert np.allclose(grid[1:] / grid[:-1], grid[1] / grid[0])
    assert res["nnz"][0, 0] == 0
    assert res["nnz"][-1, 0] > 0


def test_explicit_grid_is_validated_and_sorted_descending():
    U, y = _cohort(n=60)
    got = G.lambda_grid(U, y, _cfg(), 0, values=[0.1, 5.0, 1.0], log=_quiet)
    assert np.array_equal(got, [5.0, 1.0, 0.1])
    for bad in ([0.1, -1.0], [np.nan], [], [np.inf]):
        with pytest.raises(InputError):
            G.lambda_grid(U, y, _cfg(), 0, values=bad, log=_quiet)


def test_batched_equals_sequential_and_chunked_equals_whole():
    U, y = _cohort(n=300, seed=5)
    cfg = _cfg(max_epochs=60, batch_size=64)  # mini-batches: the shared shuffling matters
    grid = np.geomspace(200.0, 1.0, 5)
    whole = P.train_path(U, y, grid, cfg, seed=2, log=_quiet)
    seq = P.train_path_sequential(U, y, grid, cfg, seed=2, log=_quiet)
    chunks = [
        P.train_path(U, y, grid[s], cfg, seed=2, log=_quiet)
        for s in (slice(3, 5), slice(0, 1), slice(1, 3))
    ]
    joined = P.concat_chunks(chunks)  # out of order on purpose: concat sorts by λ
    assert set(whole) == set(seq) == set(joined)
    for other in (seq, joined):
        for key in whole:
            np.testing.assert_allclose(whole[key], other[key], rtol=0, atol=1e-6, err_msg=key)
        zs = P.z_statistics(grid, [whole["W0"], whole["W1"]])
        zo = P.z_statistics(other["lambdas"], [other["W0"], other["W1"]])
        assert all(np.array_equal(a, b) for a, b in zip(zs, zo, strict=True))
    # On CPU with MKL and hidden widths that are multiples of 16 the agreement is bit for bit.
    if torch.backends.mkl.is_available():
        for other in (seq, joined):
            assert all(np.array_equal(whole[k], other[k], equal_nan=True) for k in whole)


def test_memory_bounded_passes_give_the_batched_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """At large p the λ grid is trained in passes (PASS_BUDGET); the result is the same."""
    U, y = _cohort(n=300, seed=5)
    cfg = _cfg(max_epochs=40, batch_size=64)
    grid = np.geomspace(200.0, 1.0, 5)
    whole = P.train_path(U, y, grid, cfg, seed=2, log=_quiet)
    messages: list[str] = []
    monkeypatch.setattr(P, "PASS_BUDGET", 2 * 64 * U.shape[1] * (cfg.units + 1))
    passes = P.train_path(U, y, grid, cfg, seed=2, log=messages.append)
    assert any("5 λ in passes of 2" in m for m in messages)
    for key in whole:
        np.testing.assert_allclose(whole[key], passes[key], rtol=0, atol=1e-6, err_msg=key)


class _OnDevice:
    """A tensor's shape and device without its data (a CUDA device needs no GPU to name)."""

    def __init__(self, rows: int, cols: int, device: str) -> None:
        self.shape, self.device = (rows, cols), torch.device(device)


def test_a_gpu_trains_a_p1000_grid_in_one_pass() -> None:
    """At 500,000 × 1,000 the CPU's memory-sized passes split a grid 8 + 2 (what the H100
    run of benchmarks/README.md logged); on a CUDA device every default grid is one pass."""
    from knockoffnet.vocabulary import AUTO_LAMBDAS

    cfg = _cfg(hidden=(32,))

    def data(device: str) -> P.TrainData:
        parts = (_OnDevice(400_000, 2000, device), None, _OnDevice(100_000, 2000, device), None)
        return P.TrainData(*parts)

    assert P.lambdas_per_pass(data("cpu"), cfg) == 8
    assert P.lambdas_per_pass(data("cuda"), cfg) >= AUTO_LAMBDAS
    assert P.lambdas_per_pass(data("cuda:1"), cfg) == P.lambdas_per_pass(data("cuda"), cfg)
    # the GPU's budget is what it buys: one λ more than it allows needs a second pass
    per = P.lambdas_per_pass(data("cuda"), cfg)
    rows = max(P.eval_rows(2000, cfg.units + 1), 128)
    assert per * rows * 2000 * (cfg.units + 1) <= P.CUDA_PASS_BUDGET
    assert (per + 1) * rows * 2000 * (cfg.units + 1) > P.CUDA_PASS_BUDGET


def test_fits_borrow_a_float32_input_and_give_it_back() -> None:
    """A float32 U is split in place (no second copy) and restored row for row afterwards;
    the fit equals the one on a copy."""
    U, y = _cohort(n=300, seed=5)
    U32 = np.ascontiguousarray(U, dtype=np.float32)
    before = U32.copy()
    cfg = _cfg(max_epochs=20, batch_size=64)
    grid = np.geomspace(200.0, 1.0, 3)
    borrowed = P.train_path(U32, y, grid, cfg, seed=2, log=_quiet)
    np.testing.assert_array_equal(U32, before)
    copied = P.train_path(U.astype(np.float64), y, grid, cfg, seed=2, log=_quiet)
    for key in borrowed:
        np.testing.assert_array_equal(borrowed[key], copied[key], err_msg=key)
    P.dense_fit(U32, y, cfg, seed=1, log=_quiet)
    np.testing.assert_array_equal(U32, before)
    wrong = P.initial_net(U.shape[1] + 1, cfg, 0)  # a start that does not fit the data
    with pytest.raises(InputError, match="start network"):  # a failed fit gives them back too
        P.train_path(U32, y, grid, cfg, seed=2, start=wrong, log=_quiet)
    np.testing.assert_array_equal(U32, before)


def _subnormal_product() -> float:
    """1e-30 × 1e-10 in float32: 1e-40, a subnormal, unless the CPU flushes it to zero."""
    return float(torch.tensor([1e-30]) * torch.tensor([1e-10]))


def test_a_dead_dense_fit_is_refitted_with_smaller_steps() -> None:
    """A step size that switches every ReLU off (the failure a 50,000 × 1,000 cohort met at
    the default step) is refitted from the same start with a tenth of the step, until the
    hidden layer is alive; a live fit is left alone."""
    rng = np.random.default_rng(0)
    U = rng.standard_normal((400, 40)).astype(np.float32)
    y = (U[:, 0] + U[:, 1] ** 2 - 1 + 0.5 * rng.standard_normal(400) > 0).astype(np.int64)
    cfg = P.TrainConfig(learning_rate=1.0, max_epochs=30, patience=5, device="cpu")
    lines: list[str] = []
    res = P.dense_fit(U, y, cfg, 1, log=lines.append)
    silent = [line for line in lines if "hidden layer went silent" in line]
    assert len(silent) == 2 and "learning rate 0.01" in silent[-1]
    val = torch.from_numpy(U[P.split_indices(y, cfg, 1)[1]])
    assert P.active_fraction(res, val, cfg) >= P.DEAD_ACTIVE
    assert res["val_accuracy"][0] > 0.7
    direct = P.dense_fit(U, y, dataclasses.replace(cfg, learning_rate=0.01), 1, log=_quiet)
    for key in ("W0", "b0", "W1", "unit_a", "val_loss"):
        np.testing.assert_array_equal(res[key], direct[key])
    lines.clear()
    P.dense_fit(U, y, P.TrainConfig(max_epochs=30, patience=5, device="cpu"), 1, lines.append)
    assert not any("silent" in line for line in lines)


def test_fits_flush_subnormal_floats_and_restore_the_mode() -> None:
    """Training computes with subnormal floats flushed to zero (x86 runs them 5-10× slower,
    and the weights of a dead hidden unit decay into them); the caller's mode comes back."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats")
    assert _subnormal_product() > 0.0
    seen: list[float] = []

    def log(msg: str) -> None:  # a λ's "done" line is written while it trains
        if msg.startswith("λ "):
            seen.append(_subnormal_product())

    U, y = _cohort(n=200)
    cfg = _cfg(max_epochs=3)
    P.dense_fit(U, y, cfg, seed=1, log=log)
    P.train_path(U, y, [10.0, 1.0], cfg, seed=1, log=log)
    assert seen == [0.0] * (len(cfg.dense_decay) + 2)  # each dense candidate, then two λ
    assert _subnormal_product() > 0.0


def test_permute_rows_in_place() -> None:
    rng = np.random.default_rng(0)
    A = rng.random((50, 3))
    order = rng.permutation(50)
    expected = A[order]
    P.permute_rows_(A, order)
    np.testing.assert_array_equal(A, expected)


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_epoch():
    U, y = _cohort(n=300, seed=7)
    cfg = _cfg(max_epochs=200, patience=5)
    grid = np.array([500.0, 5.0, 0.5])
    res = P.train_path(U, y, grid, cfg, seed=0, log=_quiet)
    assert res["epochs"][0] < cfg.max_epochs  # all-zero network: the objective plateaus
    stopped = res["epochs"] < cfg.max_epochs
    assert np.array_equal(
        res["epochs"][stopped] - res["best_epoch"][stopped], np.full(stopped.sum(), cfg.patience)
    )
    # The kept weights reproduce the recorded best-epoch validation loss ...
    _, va = P.split_indices(y, cfg, seed=0)
    for j in range(grid.size):
        logit = predict(net_from_arrays(res, j), U[va], "relu")[:, 0]
        bce = np.mean(np.logaddexp(0.0, logit) - y[va] * logit)
        assert np.isclose(bce, res["val_loss"][j], rtol=1e-4)
    # ... and equal a run cut off at the best epoch.
    j = 1
    cut = P.train_path(
        U,
        y,
        grid[j : j + 1],
        _cfg(max_epochs=int(res["best_epoch"][j]), patience=1000),
        seed=0,
        log=_quiet,
    )
    assert np.array_equal(cut["W0"][0], res["W0"][j])


def test_a_large_cohort_checks_every_check_rows_rows(monkeypatch):
    """Epochs of early stopping are check_rows rows once a pass is longer: the steps continue
    the pass's row order across checks, and patience/max_epochs count checks."""
    U, y = _cohort(n=500, seed=3)  # 400 training rows
    cfg = _cfg(batch_size=50, check_rows=100, max_epochs=6, patience=1000)
    assert P.steps_per_check(400, cfg) == 2
    assert P.steps_per_check(400, _cfg(batch_size=50, check_rows=0)) == 8
    assert P.steps_per_check(400, _cfg(batch_size=50, check_rows=400)) == 8  # m ≤ check_rows
    seen: list[int] = []
    real_step = P._one_step

    def counting_step(st, x, yy, c):
        seen.append(int(x.shape[0]))
        real_step(st, x, yy, c)

    monkeypatch.setattr(P, "_one_step", counting_step)
    res = P.train_path(U, y, np.array([1.0]), cfg, seed=0, log=_quiet)
    assert res["epochs"][0] == 6 and np.isfinite(res["curve_val_loss"][0]).all()
    assert seen == [50] * 12  # 6 checks × 2 steps: one and a half passes, not six


def test_check_batches_continue_one_row_order_per_pass():
    U, y = _cohort(n=500, seed=3)
    cfg = _cfg(batch_size=50, check_rows=100)
    with P.prepared(U, y, cfg, 0, _quiet) as data:
        gen = torch.Generator().manual_seed(5)
        batches = P._batches(data, cfg, gen)
        first_pass = torch.cat([next(batches) for _ in range(8)]).numpy()
        second_pass = torch.cat([next(batches) for _ in range(8)]).numpy()
    assert np.array_equal(np.sort(first_pass), np.arange(400))
    assert np.array_equal(np.sort(second_pass), np.arange(400))
    assert not np.array_equal(first_pass, second_pass)  # a new order each pass


def test_check_rows_leaves_a_cohort_below_it_unchanged():
    """The default check_rows (20,000) must not touch the study's cohorts (m = 800): the
    same path as a check after every pass."""
    U, y = _cohort(n=300, seed=7)
    grid = np.array([5.0, 0.5])
    a = P.train_path(U, y, grid, _cfg(max_epochs=30, check_rows=0), seed=2, log=_quiet)
    b = P.train_path(U, y, grid, _cfg(max_epochs=30, check_rows=240), seed=2, log=_quiet)
    for key in ("W0", "epochs", "best_epoch", "curve_val_loss"):
        np.testing.assert_array_equal(a[key], b[key])


def test_check_rows_must_be_a_count():
    with pytest.raises(InputError, match="check_rows"):
        _cfg(check_rows=-1)


def test_multiclass_path_runs():
    U, y = _cohort(task="multiclass")
    cfg = _cfg(task="multiclass", n_classes=3, max_epochs=80)
    grid = G.lambda_grid(U, y, cfg, seed=0, count=4, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=0, log=_quiet)
    assert res["W1"].shape == (4, 3, 16) and res["b1"].shape == (4, 3)
    assert res["nnz"][0, 0] == 0
    assert res["val_accuracy"].max() > 0.6  # three roughly balanced classes: chance ≈ 0.33
    assert predict(net_from_arrays(res, -1), U, "relu").shape == (U.shape[0], 3)


def test_regression_path_records_nan_accuracy():
    U, y = _cohort(n=200, task="regression")
    res = P.train_path(
        U, y, np.array([10.0, 0.1]), _cfg(task="regression", max_epochs=30), seed=0, log=_quiet
    )
    assert np.isnan(res["val_accuracy"]).all() and np.isfinite(res["val_loss"]).all()


def test_outcome_scaling_is_the_training_splits_mean_and_sd_for_regression_only():
    from knockoffnet.train_data import outcome_scaling

    y = np.array([1.0, 3.0, 5.0, 7.0])
    assert outcome_scaling(y, _cfg(task="regression")) == (4.0, float(np.sqrt(5.0)))
    assert outcome_scaling(y, _cfg(task="regression", outcome_scale="raw")) == (0.0, 1.0)
    assert outcome_scaling(np.array([0, 1, 1, 0]), _cfg()) == (0.0, 1.0)
    assert outcome_scaling(np.full(4, 2.0), _cfg(task="regression")) == (2.0, 1.0)


def test_regression_fits_train_standardised_and_hand_out_outcome_units():
    """A standardised fit's networks, losses and path are those of the outcome's units: the
    dense fit's validation loss is its network's MSE on the validation rows in y's units,
    and a·y + b gives the same grid, the same inputs in use and a·(network) + b."""
    U, y = _cohort(n=300, task="regression")
    cfg = _cfg(task="regression", max_epochs=60)
    a, b = 40.0, 1000.0
    fits = []
    for yy in (y, a * y + b):
        dense = P.dense_fit(U, yy, cfg, seed=2, log=_quiet)
        start = net_from_arrays(dense, 0)
        grid = G.lambda_grid(U, yy, cfg, seed=2, count=4, ratio=0.05, start=start, log=_quiet)
        fits.append((dense, grid, P.train_path(U, yy, grid, cfg, 2, start=start, log=_quiet)))
    (dense, grid, path), (dense_ab, grid_ab, path_ab) = fits
    _, val = P.split_indices(y, cfg, 2)
    out = predict(net_from_arrays(dense_ab, 0), U[val], "relu")[:, 0]
    np.testing.assert_allclose(
        dense_ab["val_loss"][0], np.mean((out - (a * y + b)[val]) ** 2), rtol=1e-4
    )
    np.testing.assert_allclose(dense_ab["val_loss"], a * a * dense["val_loss"], rtol=1e-3)
    np.testing.assert_allclose(grid_ab, grid, rtol=1e-3)
    assert np.array_equal(path_ab["inputs_alive"], path["inputs_alive"])
    np.testing.assert_allclose(path_ab["val_loss"], a * a * path["val_loss"], rtol=1e-2)
    for j in range(len(grid)):
        got = predict(net_from_arrays(path_ab, j), U[val], "relu")
        want = a * predict(net_from_arrays(path, j), U[val], "relu") + b
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2 * a)
    # on y as given the grid moves with the outcome's scale (the behaviour before)
    raw = _cfg(task="regression", max_epochs=60, outcome_scale="raw")
    start = net_from_arrays(P.dense_fit(U, a * y + b, raw, seed=2, log=_quiet), 0)
    top = G.lambda_grid(U, a * y + b, raw, seed=2, count=4, ratio=0.05, start=start, log=_quiet)[0]
    assert top > 10 * grid_ab[0]


def test_z_statistics_constructed_example():
    lam = np.array([8.0, 4.0, 2.0, 1.0])
    w = np.zeros((4, 1, 4), np.float32)
    w[:, 0, 0] = 1.0  # never zeroed → top of the grid, not 0
    w[2:, 0, 1] = 1.0  # enters at λ = 2
    w[[0, 3], 0, 2] = 1.0  # non-zero at the top, zero in between → sup = 8
    # column 3 stays zero → 0
    z = P.z_statistics(lam, [w])[0]
    assert np.array_equal(z, [[8.0, 2.0, 8.0, 0.0]])
    assert np.array_equal(P.z_statistics(lam[::-1], [w[::-1]])[0], z)  # order-free
    with pytest.raises(InputError):
        P.z_statistics(lam, [w[:3]])


def test_never_zeroed_weights_get_the_top_lambda_in_a_real_run():
    U, y = _cohort(n=200)
    lam = np.array([1e-6, 1e-7])
    res = P.train_path(U, y, lam, _cfg(max_epochs=5), seed=0, log=_quiet)
    for z in P.z_statistics(res["lambdas"], [res["W0"], res["W1"]]):
        assert (z == 1e-6).all()


def test_same_seed_same_results_other_seed_differs():
    U, y = _cohort(n=200)
    cfg = _cfg(max_epochs=20, batch_size=50)
    lam = np.array([20.0, 2.0])
    a = P.train_path(U, y, lam, cfg, seed=3, log=_quiet)
    b = P.train_path(U, y, lam, cfg, seed=3, log=_quiet)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    c = P.train_path(U, y, lam, cfg, seed=4, log=_quiet)
    assert not np.array_equal(a["W0"], c["W0"])


def test_threads_do_not_change_the_dense_fit_grid_or_path():
    """The workflow gives a lone grid job every idle core (common.smk grid_threads), so the
    same seed must give the same fit on any number of threads (blocks of 128 rows x 120
    inputs, which torch and MKL do split; the rows only set how many steps there are)."""
    rng = np.random.default_rng(5)
    n, p = 800, 60
    U = rng.standard_normal((n, 2 * p)).astype(np.float32)
    score = U[:, :3].sum(1) + np.abs(U[:, 3:6]).sum(1) + rng.standard_normal(n)
    y = (score > np.median(score)).astype(np.int64)
    runs = []
    for threads in (1, 2):
        cfg = _cfg(hidden=(32,), max_epochs=6, threads=threads)
        dense = P.dense_fit(U.copy(), y, cfg, seed=2, log=_quiet)
        start = net_from_arrays(dense, 0)
        grid = G.lambda_grid(U.copy(), y, cfg, seed=2, count=5, ratio=1e-2, start=start, log=_quiet)
        path = P.train_path(U.copy(), y, grid[1:3], cfg, seed=2, start=start, log=_quiet)
        runs.append((dense, grid, path))
    torch.set_num_threads(1)
    (d1, g1, r1), (d2, g2, r2) = runs
    assert all(np.array_equal(d1[k], d2[k], equal_nan=True) for k in d1)
    assert np.array_equal(g1, g2)
    assert all(np.array_equal(r1[k], r2[k], equal_nan=True) for k in r1)
    assert (r1["inputs_alive"] > 0).any()  # a path that kept something, not all zeros


# ----------------------------------------------------------------------------- networks, inputs


def test_resolve_device_falls_back_to_cpu():
    lines: list[str] = []
    assert P.resolve_device("cpu", lines.append).type == "cpu"
    if not torch.cuda.is_available():
        assert P.resolve_device("cuda", lines.append).type == "cpu"
        assert P.resolve_device("auto", lines.append).type == "cpu"
        assert any("falling back" in s for s in lines)
    with pytest.raises(InputError):
        P.resolve_device("tpu", lines.append)


@pytest.mark.parametrize(
    "kw",
    [
        dict(activation="sigmoid"),
        dict(task="survival"),
        dict(optimizer="sgd"),
        dict(penalty="l2"),
        dict(start="hot"),
        dict(units=-1),
        dict(hidden=(0,)),
        dict(val_fraction=1.0),
        dict(task="binary", n_classes=3),
        dict(learning_rate=-1.0),
        dict(momentum=1.0),
        dict(device="gpu"),
        dict(dense_decay=-1.0),
        dict(dense_decay=1000.0),  # × the default step 3e-3 ≥ 1: weights would change sign
        dict(dense_decay=float("nan")),
        dict(dense_decay="strong"),
        dict(dense_decay=True),
        dict(optimizer="fista", dense_decay=10.0),  # × FISTA's step 0.3 ≥ 1
        dict(dense_decay=[]),
        dict(dense_decay=[10.0, -1.0]),
        dict(dense_decay=[10.0, 1000.0]),
        dict(dense_decay=["auto"]),
        dict(dense_decay=[True]),
        dict(outcome_scale="zscore"),
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(InputError):
        _cfg(**kw)


def test_bad_data_raises():
    U, y = _cohort(n=60)
    cfg = _cfg()
    lam = np.array([1.0])
    bad_u = U.copy()
    bad_u[3, 2] = np.nan
    cases = [
        (bad_u, y, lam),  # NaN in U
        (U, y[:-1], lam),  # mismatched lengths
        (U, np.where(y == 1, 2, 0), lam),  # class code outside 0..K-1 for binary
        (U, np.zeros_like(y), lam),  # one class only
        (U, y, np.array([1.0, -2.0])),  # non-positive λ
        (U[:, :, None], y, lam),  # wrong rank
    ]
    for u, yy, ll in cases:
        with pytest.raises(InputError):
            P.train_path(u, yy, ll, cfg, seed=0, log=_quiet)
    rare = y.copy()
    rare[:] = 0
    rare[0] = 1  # one row of class 1: cannot sit on both sides of the split
    with pytest.raises(InputError, match="class code 1"):
        P.split_indices(rare, cfg, seed=0)
    with pytest.raises(InputError):
        G.lambda_grid(U, y, cfg, 0, count=0, log=_quiet)


# ----------------------------------------------------------------------------- dense fit, warm start


def test_dense_fit_learns_and_is_the_warm_start():
    U, y = _cohort(n=400, seed=11)
    cfg = _cfg(max_epochs=80)
    dense = P.dense_fit(U, y, cfg, seed=3, log=_quiet)
    assert dense["lambdas"].tolist() == [0.0] and dense["inputs_alive"][0] == U.shape[1]
    assert dense["val_accuracy"][0] > 0.7  # three strong signals: far above chance
    start = net_from_arrays(dense, 0)
    # A negligible λ trained from the dense fit stays where the dense fit was (it is already
    # early-stopped there); from the random start it is a different network.
    warm = P.train_path(U, y, [1e-9], _cfg(max_epochs=1), seed=3, start=start, log=_quiet)
    cold = P.train_path(U, y, [1e-9], _cfg(max_epochs=1), seed=3, log=_quiet)
    moved = np.abs(warm["W0"][0] - dense["W0"][0]).max()
    assert moved < np.abs(cold["W0"][0] - dense["W0"][0]).max()
    with pytest.raises(InputError, match="rerun the dense fit"):
        P.train_path(U, y, [1.0], _cfg(units=2), seed=3, start=start, log=_quiet)


def test_dense_decay_shrinks_the_dense_fit_and_nothing_else():
    """``dense_decay`` shrinks every weight matrix of the dense fit each step (smaller norms
    than the undecayed fit from the same start); the grid check and the λ path never decay,
    so a path trained from a given start is the same with or without the setting."""
    U, y = _cohort(n=400, seed=11)
    plain, decayed = _cfg(max_epochs=60, dense_decay=0), _cfg(max_epochs=60, dense_decay=10.0)
    a = P.dense_fit(U, y, plain, seed=3, log=_quiet)
    b = P.dense_fit(U, y, decayed, seed=3, log=_quiet)
    for key in ("W0", "W1"):
        assert np.linalg.norm(b[key][0]) < 0.8 * np.linalg.norm(a[key][0])
    assert b["val_accuracy"][0] > 0.7  # still learns the three strong signals
    start = net_from_arrays(a, 0)
    lam = np.array([3.0, 0.3])
    path_plain = P.train_path(U, y, lam, plain, seed=3, start=start, log=_quiet)
    path_decay = P.train_path(U, y, lam, decayed, seed=3, start=start, log=_quiet)
    for key in ("W0", "W1", "val_loss"):
        np.testing.assert_array_equal(path_plain[key], path_decay[key])
    grid = G.lambda_grid(U, y, plain, 3, count=4, ratio=1e-2, log=_quiet, start=start)
    assert np.array_equal(
        grid, G.lambda_grid(U, y, decayed, 3, count=4, ratio=1e-2, log=_quiet, start=start)
    )


def test_patience_auto_keeps_large_cohorts_and_lengthens_small_ones():
    """``training.patience: auto`` (the default): 20 checks and a cap of 300 from 800
    training rows (the n = 1,000 designs every criterion was measured on keep their fits),
    150 and 1,000 up to 320 rows (the orange skin's λ fits left their plateau only then),
    never rising with m in between; numbers are kept, and the cap follows a given patience."""
    from knockoffnet.vocabulary import fit_epochs

    for m in (800, 801, 5_000, 400_000):
        assert fit_epochs("auto", "auto", m) == (20, 300)
    for m in (10, 142, 320):
        assert fit_epochs("auto", "auto", m) == (150, 1000)
    between = [fit_epochs("auto", "auto", m)[0] for m in range(320, 801, 5)]
    assert all(a >= b for a, b in itertools.pairwise(between))
    assert 20 < fit_epochs("auto", "auto", 455)[0] < 150  # WDBC's training rows
    assert fit_epochs(7, 50, 100) == (7, 50)
    assert fit_epochs(150, "auto", 5_000) == (150, 1000)
    assert fit_epochs("auto", 40, 100) == (150, 40)
    cfg = P.TrainConfig()
    assert (cfg.patience, cfg.max_epochs, cfg.learning_rate) == ("auto", "auto", "auto")
    resolved = dataclasses.replace(
        cfg, patience=150, max_epochs=1000, learning_rate=0.01, dense_coupling="none"
    )
    assert cfg.at_rows(320) == resolved
    explicit = _cfg()
    assert explicit.at_rows(320) is explicit
    for bad in ("often", 0, True):
        with pytest.raises(InputError, match="patience must be auto or an integer"):
            P.TrainConfig(patience=bad)


def test_patience_auto_trains_a_1000_row_cohort_as_patience_20_did():
    """The designs every issue 14 criterion was measured on (n = 1,000, 800 training rows)
    train bit for bit as before ``auto``: same epochs, same kept weights."""
    U, y = _cohort(n=1_000, seed=3)
    grid = np.array([50.0, 5.0, 0.5])
    before = P.train_path(U, y, grid, _cfg(patience=20, max_epochs=300), seed=2, log=_quiet)
    auto = P.train_path(U, y, grid, _cfg(patience="auto", max_epochs="auto"), seed=2, log=_quiet)
    assert before.keys() == auto.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], auto[key], err_msg=key)


def test_learning_rate_auto_is_adams_step_from_800_rows_and_larger_below():
    """``training.learning_rate: auto`` (the default): Adam's 0.003 from 800 training rows, 0.01
    up to 320 (the orange skin's fits matched gradient boosting only then), never falling
    as m shrinks in between; the other step rules keep their defaults; numbers and null as
    before. The step exists only for a number of rows: ``lr`` asks for ``at_rows`` first."""
    from knockoffnet.vocabulary import step_size

    for m in (800, 5_000, 400_000):
        assert step_size("auto", "adam", m) == 3e-3
    for m in (10, 320):
        assert step_size("auto", "adam", m) == pytest.approx(0.01)
    between = [step_size("auto", "adam", m) for m in range(320, 801, 5)]
    assert all(a >= b for a, b in itertools.pairwise(between))
    assert 3e-3 < step_size("auto", "adam", 455) < 0.01
    for rule, default in (("fista", 0.3), ("momentum", 0.3), ("plain", 1.0)):
        assert step_size("auto", rule, 100) == step_size(None, rule, 100) == default
    assert step_size(0.05, "adam", 100) == 0.05
    cfg = _cfg(learning_rate="auto")
    assert cfg.dense_decay == (10.0, 0.0)  # auto's largest step, 0.01, is below 0.1
    with pytest.raises(ValueError, match="at_rows"):
        _ = cfg.lr
    assert cfg.at_rows(320).lr == pytest.approx(0.01)
    assert cfg.at_rows(1_000).lr == 3e-3
    for bad in ("fast", True, -1.0):
        with pytest.raises(InputError, match="learning_rate must be null, auto or positive"):
            _cfg(learning_rate=bad)


def test_learning_rate_auto_trains_a_1000_row_cohort_as_the_default_step_did():
    """From 800 training rows ``auto`` is Adam's default step: the n = 1,000 designs' dense
    fit and path bit for bit as with ``learning_rate: null``."""
    U, y = _cohort(n=1_000, seed=3)
    grid = np.array([50.0, 5.0, 0.5])
    base, auto = _cfg(), _cfg(learning_rate="auto")
    dense = P.dense_fit(U, y, base, 2, _quiet), P.dense_fit(U, y, auto, 2, _quiet)
    path = (P.train_path(U, y, grid, c, seed=2, log=_quiet) for c in (base, auto))
    for before, after in (dense, tuple(path)):
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_learning_rate_auto_takes_larger_steps_on_a_small_cohort():
    """At 160 training rows ``auto`` fits with the step 0.01 (its setup log says so), and
    that fit differs from one at Adam's default step."""
    U, y = _cohort(n=200, seed=4)
    lines: list[str] = []
    auto = P.dense_fit(U, y, _cfg(learning_rate="auto"), 1, lines.append)
    assert any("adam lr=0.01" in line and "(auto)" in line for line in lines), lines[:2]
    default = P.dense_fit(U, y, _cfg(), 1, _quiet)
    assert not np.array_equal(auto["W0"], default["W0"])


@pytest.mark.parametrize(("n", "patience"), [(200, 150), (1_000, 20)])
def test_a_fit_at_patience_auto_waits_as_long_as_its_rows_ask(n: int, patience: int):
    """A fit on noise stops by patience, `patience` checks after its best one: 150 at 160
    training rows, 20 at 800, as :func:`fit_epochs` resolves ``auto`` for its rows."""
    rng = np.random.default_rng(5)
    U = rng.standard_normal((n, 8)).astype(np.float32)
    y = rng.integers(0, 2, n)
    lines: list[str] = []
    res = P.dense_fit(
        U, y, P.TrainConfig(hidden=(4,), dense_decay=0, device="cpu"), 1, lines.append
    )
    assert res["epochs"][0] - res["best_epoch"][0] == patience
    assert any(f"patience {patience}, max_epochs" in line and "(auto)" in line for line in lines)


def test_dense_decay_auto_is_resolved_by_the_step_rule():
    """``auto`` (the default) is the candidates 10 and 0 with Adam at steps below 0.1 and
    none with the full-batch rules or larger steps, where 10 would turn into sign flips; a
    number is one candidate, a list is kept in order; every reader sees the tuple."""
    assert P.TrainConfig().dense_decay == (10.0, 0.0)
    assert _cfg(dense_decay="auto", learning_rate=0.05).dense_decay == (10.0, 0.0)
    for rule in ("fista", "momentum", "plain"):
        assert _cfg(optimizer=rule).dense_decay == (0.0,)
    assert _cfg(learning_rate=0.1).dense_decay == (0.0,)
    assert _cfg(learning_rate=1.0).dense_decay == (0.0,)
    assert _cfg(dense_decay=3).dense_decay == (3.0,)
    assert _cfg(dense_decay=[0, 3]).dense_decay == (0.0, 3.0)
    assert _cfg(optimizer="fista", dense_decay=0.5).dense_decay == (0.5,)


def test_dense_fit_keeps_the_candidate_decay_with_the_lowest_validation_loss():
    """With several candidate decays every one is fitted from the seed's start and the one
    with the lowest validation loss is returned whole (the first on a tie), its decay
    recorded: a decay that shrinks the network to a constant (as 10 did on a 100,000 × 1,000
    genotype cohort) loses to the undecayed fit instead of starting the path."""
    U, y = _cohort(n=400, seed=11)
    single = {
        d: P.dense_fit(U, y, _cfg(max_epochs=40, dense_decay=d), 3, _quiet) for d in (0, 10, 300)
    }
    assert single[300]["val_accuracy"][0] < 0.6 < single[0]["val_accuracy"][0]  # 300: a constant
    for candidates in ([300, 0], [0, 300], [10, 0], [0, 10], [10, 300, 0]):
        got = P.dense_fit(U, y, _cfg(max_epochs=40, dense_decay=candidates), 3, _quiet)
        best = min(candidates, key=lambda d: single[d]["val_loss"][0])
        assert got["dense_decay"].tolist() == [float(best)]
        for key in ("W0", "W1", "val_loss", "best_epoch"):
            np.testing.assert_array_equal(got[key], single[best][key])
    tie = P.dense_fit(U, y, _cfg(max_epochs=40, dense_decay=[0, 0]), 3, _quiet)
    np.testing.assert_array_equal(tie["W0"], single[0]["W0"])


def _swap_columns(U: np.ndarray, js: np.ndarray) -> np.ndarray:
    p = U.shape[1] // 2
    out = U.copy()
    out[:, js], out[:, js + p] = U[:, js + p], U[:, js]
    return out


def _swap_start(net, js: np.ndarray, p: int, units: int):
    """The same initial network with input j's parameters moved to input j+p and back."""
    perm = np.arange(2 * p)
    perm[js], perm[js + p] = js + p, js
    w0 = net.ws[0].view(net.ws[0].shape[0], 2 * p, units + 1)[:, perm].reshape(net.ws[0].shape)
    ua = None if net.ua is None else net.ua[perm]
    ub = None if net.ub is None else net.ub[perm]
    return type(net)(ua, ub, [w0, *net.ws[1:]], net.bs)


@pytest.mark.parametrize("units", [0, 3])
def test_training_treats_every_input_column_alike(units):
    """Swap x_j ↔ x~_j in the data and in the start network: every per-input output of the
    path swaps with it. With i.i.d. initial weights this gives flip-sign in distribution."""
    from knockoffnet.importance import run_importances

    U, y = _cohort(n=240, seed=2)
    p = U.shape[1] // 2
    js = np.array([0, 3, 7])
    cfg = _cfg(units=units, max_epochs=15, batch_size=60)
    start = P.initial_net(U.shape[1], cfg, seed=4)
    grid = np.array([20.0, 2.0])
    a = P.train_path(U, y, grid, cfg, seed=4, start=start, log=_quiet)
    b = P.train_path(
        _swap_columns(U, js),
        y,
        grid,
        cfg,
        seed=4,
        start=_swap_start(start, js, p, units),
        log=_quiet,
    )
    ia = run_importances(net_from_arrays(a, 1), np.zeros((16, 2 * p * (units + 1))), U, p, "relu")
    ib = run_importances(
        net_from_arrays(b, 1),
        np.zeros((16, 2 * p * (units + 1))),
        _swap_columns(U, js),
        p,
        "relu",
    )
    perm = np.arange(2 * p)
    perm[js], perm[js + p] = js + p, js
    for key in ("importance_ol", "importance_ml"):
        np.testing.assert_allclose(ib[key], ia[key][perm], rtol=1e-4, atol=1e-8)
    np.testing.assert_array_equal(a["inputs_alive"], b["inputs_alive"])


def test_paper_configuration_still_trains():
    """units 0, l1, FISTA, full batch, cold start: the paper's λ path."""
    U, y = _cohort(n=300, seed=9)
    cfg = _cfg(units=0, penalty="l1", optimizer="fista", batch_size=0, start="cold")
    assert cfg.lr == 0.3
    grid = G.lambda_grid(U, y, cfg, seed=1, count=5, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
    assert res["W0"].shape == (5, 16, U.shape[1]) and "unit_a" not in res
    assert res["nnz"][0].sum() == 0 or res["nnz"][0, 0] == 0
    assert res["val_accuracy"].max() > 0.7


@pytest.mark.parametrize("penalty", ["group", "l1"])
def test_covariates_are_never_penalised_or_counted(penalty):
    """Trailing covariate inputs keep their weights at any λ and are not counted in use."""
    U, y = _cohort(n=240, seed=13)
    rng = np.random.default_rng(0)
    C = rng.standard_normal((U.shape[0], 2))
    UC = np.hstack([U, C])
    cfg = _cfg(covariates=2, penalty=penalty, max_epochs=30)
    res = P.train_path(UC, y, [1e6, 1.0], cfg, seed=1, log=_quiet)
    groups = res["W0"].reshape(2, 16, UC.shape[1], cfg.units + 1)
    assert (groups[0, :, : U.shape[1]] == 0).all()  # the huge λ removes every feature ...
    assert (np.abs(groups[0, :, U.shape[1] :]).sum(axis=(0, 2)) > 0).all()  # ... no covariate
    assert res["inputs_alive"][0] == 0 and res["inputs_alive"][1] <= U.shape[1]
    grid = G.lambda_grid(UC, y, cfg, seed=1, count=3, ratio=0.1, log=_quiet)
    assert np.isfinite(grid).all() and grid[0] > grid[-1]
    with pytest.raises(InputError):
        _cfg(covariates=-1)


def test_grid_with_covariates_reaches_below_the_features_zeroing():
    """The grid check must ask whether the *features* are zeroed: a covariate's weights are
    never zero, and counting them made every probe "non-zero", so the grid fell back to its
    largest probe (λ0·4⁵) and every λ of it removed every feature (a 100,000-row PLINK
    cohort with one covariate selected nothing)."""
    U, y = _cohort(n=400, seed=13)
    C = np.random.default_rng(0).standard_normal((U.shape[0], 1))
    UC = np.hstack([U, C])
    cfg = _cfg(covariates=1, max_epochs=60)
    grid = G.lambda_grid(UC, y, cfg, seed=1, count=4, ratio=0.01, log=_quiet)
    res = P.train_path(UC, y, grid, cfg, seed=1, log=_quiet)
    assert res["inputs_alive"][0] == 0  # the top zeroes every feature ...
    assert res["inputs_alive"][-1] >= 3  # ... and the bottom keeps the planted ones
    plain = G.lambda_grid(U, y, _cfg(max_epochs=60), seed=1, count=4, ratio=0.01, log=_quiet)
    assert grid[0] < 16 * plain[0]  # the same scale as without the covariate


def test_lambda_grid_is_still_importable_from_path():
    """The lambda_grid rule's entry script imports it from path: Snakemake reruns a rule whose
    script is newer than its outputs, so moving the grid (and the dense fit, the settings and
    the split) to their own modules must not edit it."""
    from knockoffnet import dense, train_config, train_data
    from knockoffnet.path import dense_fit, lambda_grid, split_indices

    assert lambda_grid is G.lambda_grid
    assert dense_fit is dense.dense_fit and split_indices is train_data.split_indices
    assert P.TrainConfig is train_config.TrainConfig and P.DEAD_ACTIVE == dense.DEAD_ACTIVE
    assert (
        "from knockoffnet.path import dense_fit, lambda_grid"
        in (Path(__file__).parents[1] / "scripts" / "lambda_grid.py").read_text()
    )
    with pytest.raises(AttributeError):
        P.no_such_name  # noqa: B018
