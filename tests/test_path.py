"""Tests of the λ-path trainer and Z (knockoffnet.path); small sizes, one thread."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from knockoffnet import path as P
from knockoffnet.errors import InputError

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
    base = dict(hidden=(16,), max_epochs=120, threads=1, device="cpu")
    return P.TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def binary_run():
    U, y = _cohort()
    cfg = _cfg()
    grid = P.lambda_grid(U, y, cfg, seed=1, count=6, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
    return U, y, cfg, grid, res


# ----------------------------------------------------------------------------- building blocks


def test_soft_threshold_gives_exact_zeros():
    w = torch.tensor([-0.3, -0.1, -1e-9, 0.0, 0.05, 0.1, 0.25])
    out = P.soft_threshold(w, 0.1)
    expected = torch.tensor([-0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.15])
    assert torch.allclose(out, expected, atol=1e-7)
    dead = w.abs() <= 0.1
    assert (out[dead] == 0.0).all()
    assert not torch.signbit(out[dead]).any()  # +0.0, not -0.0
    per_lambda = P.soft_threshold(torch.ones(2, 1, 3), torch.tensor([[[0.5]], [[2.0]]]))
    assert per_lambda[0].eq(0.5).all() and per_lambda[1].eq(0.0).all()


@pytest.mark.parametrize("task,k", [("binary", 1), ("multiclass", 3), ("regression", 1)])
@pytest.mark.parametrize("act", P.ACTIVATIONS)
def test_hand_written_gradients_match_autograd(task, k, act):
    gen = torch.Generator().manual_seed(0)
    sizes, n_lam, rows = [6, 5, 4, k], 3, 9
    ws = [
        torch.randn(n_lam, o, i, generator=gen, dtype=torch.float64)
        for i, o in itertools.pairwise(sizes)
    ]
    bs = [torch.randn(n_lam, o, generator=gen, dtype=torch.float64) for o in sizes[1:]]
    x = torch.randn(rows, 6, generator=gen, dtype=torch.float64)
    if task == "regression":
        y = torch.randn(rows, generator=gen, dtype=torch.float64)
    else:
        y = torch.randint(0, max(k, 2), (rows,), generator=gen)
    gws, gbs = P._gradients([w.clone() for w in ws], [b.clone() for b in bs], x, y, act, task)
    leaves = [t.clone().requires_grad_() for t in ws + bs]
    h, f = x, P._act_fn(act)
    for i in range(len(ws)):
        h = torch.matmul(h, leaves[i].transpose(1, 2)) + leaves[len(ws) + i].unsqueeze(1)
        h = f(h) if i < len(ws) - 1 else h
    auto = torch.autograd.grad(P._loss_rows(h, y, task).mean(1).sum(), leaves)
    for a, b in zip(auto, gws + gbs, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


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


def test_z_of_signals_exceeds_z_of_noise(binary_run):
    _, _, _, _, res = binary_run
    z0 = P.z_statistics(res["lambdas"], [res["W0"], res["W1"]])[0]
    per_input = z0.sum(0)  # column j = input j: x_1..x_p, then the knockoffs
    signal = per_input[[0, 1, 2]]
    noise = np.delete(per_input, [0, 1, 2])
    assert signal.mean() > 1.2 * noise.mean()
    assert signal.min() > np.median(noise)


def test_result_keys_shapes_and_records(binary_run):
    U, _, cfg, grid, res = binary_run
    n_lam = grid.size
    assert res["W0"].shape == (n_lam, 16, U.shape[1]) and res["W0"].dtype == np.float32
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


def test_grid_is_descending_geometric_and_its_top_zeroes_the_first_layer(binary_run):
    _, _, _, grid, res = binary_run
    assert np.all(np.diff(grid) < 0)
    assert np.isclose(grid[-1] / grid[0], 1e-2)
    assert np.allclose(grid[1:] / grid[:-1], grid[1] / grid[0])
    assert res["nnz"][0, 0] == 0
    assert res["nnz"][-1, 0] > 0


def test_explicit_grid_is_validated_and_sorted_descending():
    U, y = _cohort(n=60)
    got = P.lambda_grid(U, y, _cfg(), 0, values=[0.1, 5.0, 1.0], log=_quiet)
    assert np.array_equal(got, [5.0, 1.0, 0.1])
    for bad in ([0.1, -1.0], [np.nan], [], [np.inf]):
        with pytest.raises(InputError):
            P.lambda_grid(U, y, _cfg(), 0, values=bad, log=_quiet)


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
        logit = P.predict(
            [res["W0"][j], res["W1"][j]], [res["b0"][j], res["b1"][j]], U[va], "relu"
        )[:, 0]
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


def test_multiclass_path_runs():
    U, y = _cohort(task="multiclass")
    cfg = _cfg(task="multiclass", n_classes=3, max_epochs=80)
    grid = P.lambda_grid(U, y, cfg, seed=0, count=4, ratio=1e-2, log=_quiet)
    res = P.train_path(U, y, grid, cfg, seed=0, log=_quiet)
    assert res["W1"].shape == (4, 3, 16) and res["b1"].shape == (4, 3)
    assert res["nnz"][0, 0] == 0
    assert res["val_accuracy"].max() > 0.6  # three roughly balanced classes: chance ≈ 0.33
    assert P.predict(
        [res["W0"][-1], res["W1"][-1]], [res["b0"][-1], res["b1"][-1]], U, "relu"
    ).shape == (U.shape[0], 3)


def test_regression_path_records_nan_accuracy():
    U, y = _cohort(n=200, task="regression")
    res = P.train_path(
        U, y, np.array([10.0, 0.1]), _cfg(task="regression", max_epochs=30), seed=0, log=_quiet
    )
    assert np.isnan(res["val_accuracy"]).all() and np.isfinite(res["val_loss"]).all()


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


# ----------------------------------------------------------------------------- networks, inputs


def test_predict_and_input_effects():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    bs = [rng.standard_normal(5), rng.standard_normal(2)]
    U = rng.standard_normal((30, 4))
    out = P.predict(ws, bs, U, "tanh")
    np.testing.assert_allclose(out, np.tanh(U @ ws[0].T + bs[0]) @ ws[1].T + bs[1], atol=1e-12)
    eff = P.input_effects(ws, bs, U, "tanh")
    assert eff.shape == (4, 2)
    eps = 1e-6
    for j in range(4):
        d = np.zeros(4)
        d[j] = eps
        fd = (P.predict(ws, bs, U + d, "tanh") - P.predict(ws, bs, U - d, "tanh")) / (2 * eps)
        np.testing.assert_allclose(eff[j], fd.mean(0), atol=1e-6)
    lin = P.input_effects([ws[0][:1]], [bs[0][:1]], U, "relu")  # linear model: the weights
    np.testing.assert_allclose(lin[:, 0], ws[0][0], atol=1e-12)
    with pytest.raises(InputError):
        P.predict(ws, bs, U[:, :3], "tanh")


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
        dict(optimizer="adam"),
        dict(hidden=(0,)),
        dict(val_fraction=1.0),
        dict(task="binary", n_classes=3),
        dict(learning_rate=-1.0),
        dict(momentum=1.0),
        dict(device="gpu"),
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
        P.lambda_grid(U, y, cfg, 0, count=0, log=_quiet)
