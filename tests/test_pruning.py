"""Reduce Weight (pruning, retraining, export): e_c with ties, masks, dead-neuron cascade,
fixed-mask training, comparison, compaction and safetensors export."""

import json
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
import torch

from knockoffnet import export as ex
from knockoffnet import pruning as pr
from knockoffnet import retraining as rt
from knockoffnet.errors import InputError

FAST = {"max_epochs": 40, "patience": 5, "batch_size": 32}


def _random_Z(sizes, seed=0, grid=8):
    """Z on a coarse grid (as produced by a λ path), so ties are common."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, grid, size=(b, a)).astype(float) / grid for a, b in pairwise(sizes)]


def _easy_binary(n=240, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


# ------------------------------------------------------------------ e_c and masks


def test_deletion_threshold_hand_example_with_ties():
    # pooled over two layers: values 1,1 | 2,2,2 | 3 -> cumulative fractions 2/6, 5/6, 6/6
    Z = [np.array([[1.0, 2.0, 3.0]]).T, np.array([[1.0, 2.0, 2.0]])]
    assert pr.deletion_threshold(Z, 0.0) == -np.inf
    assert pr.deletion_threshold(Z, 0.3) == -np.inf  # the tied pair at 1 would exceed 0.3
    assert pr.deletion_threshold(Z, 1 / 3) == 1.0
    assert pr.deletion_threshold(Z, 0.8) == 1.0  # the tied triple at 2 would reach 5/6 > 0.8
    assert pr.deletion_threshold(Z, 5 / 6) == 2.0
    assert pr.deletion_threshold(Z, 1.0) == 3.0
    m = pr.prune_masks(Z, 0.8)
    assert [k.tolist() for k in m] == [[[False], [True], [True]], [[False, True, True]]]


def test_decimal_rate_is_exact():
    Z = [np.arange(10.0).reshape(5, 2), np.full((1, 5), 20.0)]  # 15 values, 0..9 distinct
    assert pr.deletion_threshold(Z, 0.2) == 2.0  # 3/15 = 0.2 exactly: kept in


def test_c_zero_keeps_everything():
    Z = _random_Z([5, 6, 1])
    assert all(m.all() for m in pr.prune_masks(Z, 0.0))


@pytest.mark.parametrize("c", [-0.1, 1.5, float("nan"), "0.3", True])
def test_bad_rate(c):
    with pytest.raises(InputError, match=r"pruning\.deletion_rate"):
        pr.deletion_threshold(_random_Z([3, 2, 1]), c)


def test_c_one_is_a_clear_error():
    with pytest.raises(InputError, match=r"no path|every path.*pruning.deletion_rate"):
        pr.prune_masks(_random_Z([5, 6, 1]), 1.0)
    with pytest.raises(InputError, match="no path"):
        pr.remove_dead_neurons([np.zeros((3, 2), bool), np.ones((1, 3), bool)])


def test_empty_selection_is_a_clear_error():
    Z = [np.zeros((6, 0)), np.ones((1, 6))]
    for call in (lambda: pr.prune_masks(Z, 0.3), lambda: pr.deletion_threshold(Z, 0.3)):
        with pytest.raises(InputError, match="selection is empty"):
            call()
    with pytest.raises(InputError, match="selected no features"):
        pr.restrict_inputs(_random_Z([8, 6, 1]), [])
    with pytest.raises(InputError, match="selected features"):
        rt.train_network(np.zeros((10, 0)), np.zeros(10), (4,), "binary", 2, "general")


def test_restrict_inputs_takes_first_layer_columns():
    Z = _random_Z([8, 6, 1])
    R = pr.restrict_inputs(Z, [1, 3])
    assert np.array_equal(R[0], Z[0][:, [1, 3]]) and R[1] is Z[1]


def test_nan_and_shape_errors():
    with pytest.raises(InputError, match="NaN"):
        pr.deletion_threshold([np.array([[np.nan, 1.0]])], 0.3)
    with pytest.raises(InputError, match="chain"):
        pr.prune_masks([np.ones((3, 2)), np.ones((1, 4))], 0.3)


# ------------------------------------------------------------------ dead neurons and structure


def _cascade_masks():
    """inputs 2 -> h0 4 -> h1 3 -> out 1.

    h0[0] has no incoming -> h1[0] (fed only by h0[0]) dies -> the output weight from h1[0] goes;
    h1[2] has no outgoing -> h0[3] (feeding only h1[2]) dies.
    """
    m0 = np.array([[0, 0], [1, 1], [1, 1], [1, 0]], bool)
    m1 = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]], bool)
    m2 = np.array([[1, 1, 0]], bool)
    return [m0, m1, m2]


def test_dead_neurons_cascade_across_layers():
    masks = _cascade_masks()
    final = pr.remove_dead_neurons(masks)
    expect0 = np.array([[0, 0], [1, 1], [1, 1], [0, 0]], bool)
    expect1 = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], bool)
    expect2 = np.array([[0, 1, 0]], bool)
    for got, want in zip(final, [expect0, expect1, expect2], strict=True):
        assert np.array_equal(got, want)
    assert all(
        np.array_equal(a, b) for a, b in zip(pr.remove_dead_neurons(final), final, strict=True)
    )
    assert masks[0][3].any()  # input not modified


def test_structure_table_matches_masks():
    masks = _cascade_masks()
    t = pr.structure_table(masks)
    assert list(t.columns) == [
        "layer",
        "neuron",
        "incoming_kept",
        "incoming_removed",
        "outgoing_kept",
        "outgoing_removed",
        "neuron_removed",
    ]
    assert t.loc[t.layer == 0, "neuron_removed"].tolist() == [True, False, False, True]
    assert t.loc[t.layer == 1, "neuron_removed"].tolist() == [True, False, True]
    Z = _random_Z([5, 6, 4, 2], seed=3)
    m = pr.prune_masks(Z, 0.3)
    t = pr.structure_table(m)
    for layer in range(2):
        rows = t[t.layer == layer]
        assert rows.incoming_kept.sum() == m[layer].sum()
        assert rows.incoming_removed.sum() == (~m[layer]).sum()
        assert rows.outgoing_kept.sum() == m[layer + 1].sum()
        assert rows.outgoing_removed.sum() == (~m[layer + 1]).sum()
    s = pr.summary_counts(m)
    final = pr.remove_dead_neurons(m)
    assert s["weights_before"] == sum(a.size for a in m) == 5 * 6 + 6 * 4 + 4 * 2
    assert s["weights_after"] == sum(f.sum() for f in final)
    assert (
        s["weights_deleted_by_z"] + s["weights_removed_with_neurons"] + s["weights_after"]
        == s["weights_before"]
    )
    assert s["deleted_fraction_by_z"] <= 0.3
    assert s["neurons_before"] == 10
    assert s["neurons_after"] == 10 - t.neuron_removed.sum()
    assert (
        s["flops_before"] == 2 * s["weights_before"] and s["flops_after"] == 2 * s["weights_after"]
    )


# ------------------------------------------------------------------ compaction


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 3), ("regression", 1)])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_compact_equals_masked_network(task, n_out, activation):
    rng = np.random.default_rng(1)
    sizes = [5, 7, 6, n_out]
    masks = pr.prune_masks(_random_Z(sizes, seed=2, grid=4), 0.5)
    final = pr.remove_dead_neurons(masks)
    W = [rng.standard_normal(m.shape) for m in masks]
    b = [rng.standard_normal(m.shape[0]) for m in masks]
    X = rng.standard_normal((50, 5))
    Wc, bc = pr.compact(W, b, masks)
    s = pr.summary_counts(masks)
    assert [w.shape[0] for w in Wc[:-1]] != [7, 6]  # something was actually removed
    assert sum(w.shape[0] for w in Wc[:-1]) == s["neurons_after"]
    assert sum(np.count_nonzero(w) for w in Wc) == s["weights_after"]
    assert 2 * sum(w.size for w in Wc) == s["dense_flops_after"]
    masked = rt.predict([w * f for w, f in zip(W, final, strict=True)], b, X, activation, task)
    np.testing.assert_allclose(rt.predict(Wc, bc, X, activation, task), masked, atol=1e-6)


# ------------------------------------------------------------------ fixed-mask training


def test_masked_gradients_are_zero():
    mask = pr.prune_masks(_random_Z([4, 6, 1], seed=5), 0.4)
    net = rt.make_network([4, 6, 1], "relu", 0.0, mask)
    net(torch.randn(16, 4)).pow(2).sum().backward()
    for lin, m in zip(net.linears, mask, strict=True):
        assert (lin.weight.grad[torch.as_tensor(~m)] == 0).all()
        assert (lin.weight.grad[torch.as_tensor(m)] != 0).any()
        assert (lin.weight.detach()[torch.as_tensor(~m)] == 0).all()


def test_reduce_weight_keeps_masked_weights_exactly_zero():
    X, y = _easy_binary(160)
    mask = pr.remove_dead_neurons(pr.prune_masks(_random_Z([4, 8, 1], seed=7), 0.3))
    W, b, sec = rt.train_network(X, y, (8,), "binary", 2, "reduce_weight", mask=mask, **FAST)
    assert sec > 0
    for w, m in zip(W, mask, strict=True):
        assert (w[~m] == 0.0).all()
        assert (w[m] != 0.0).all()
    dead = ~mask[0].any(axis=1)
    assert (b[0][dead] == 0.0).all()
    with pytest.raises(InputError, match="mask"):
        rt.train_network(X, y, (8,), "binary", 2, "reduce_weight", **FAST)


def test_training_is_deterministic():
    X, y = _easy_binary(120)
    a = rt.train_network(X, y, (6,), "binary", 2, "dropout", seed=3, **FAST)
    b = rt.train_network(X, y, (6,), "binary", 2, "dropout", seed=3, **FAST)
    for u, v in zip(a[0] + a[1], b[0] + b[1], strict=True):
        assert np.array_equal(u, v)


# ------------------------------------------------------------------ comparison


def test_compare_predictions_easy_binary_and_deterministic():
    X, y = _easy_binary()
    mask = pr.prune_masks(_random_Z([4, 8, 1], seed=11), 0.3)
    per, summ = rt.compare_predictions(X, y, "binary", 2, (8,), mask, repeats=2, seed=4, **FAST)
    assert list(per.columns) == [
        "repeat",
        "method",
        "accuracy",
        "auc",
        "f1",
        "rmse",
        "r2",
        "seconds",
    ]
    assert len(per) == 6 and set(per.method) == set(rt.MODES)
    assert (per.accuracy > 0.8).all() and (per.auc > 0.8).all() and per.rmse.isna().all()
    assert summ.method.tolist() == list(rt.MODES) and (summ.n == 2).all()
    assert np.isclose(
        summ.set_index("method").loc["general", "accuracy_mean"],
        per[per.method == "general"].accuracy.mean(),
    )
    again, _ = rt.compare_predictions(X, y, "binary", 2, (8,), mask, repeats=2, seed=4, **FAST)
    pd.testing.assert_frame_equal(per.drop(columns="seconds"), again.drop(columns="seconds"))
    diff = rt.paired_differences(per)
    assert set(diff.method) == {"dropout", "reduce_weight"} and (diff.n == 2).all()


def test_compare_predictions_multiclass_and_regression():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((240, 3))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.6, 0.6])
    per, _ = rt.compare_predictions(X, y, "multiclass", 3, (8,), None, repeats=1, **FAST)
    assert set(per.method) == {"general", "dropout"}
    assert (per.accuracy > 0.7).all() and per.f1.notna().all() and per.auc.notna().all()
    yr = 2.0 * X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(240) + 5.0
    mask = pr.prune_masks(_random_Z([3, 8, 1], seed=1), 0.3)
    per, _ = rt.compare_predictions(X, yr, "regression", 0, (8,), mask, repeats=1, **FAST)
    assert (per.r2 > 0.8).all() and per.accuracy.isna().all()


# ------------------------------------------------------------------ export


def test_export_load_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    X, y = _easy_binary(160)
    mask = pr.prune_masks(_random_Z([4, 8, 1], seed=7), 0.4)
    W, b, _ = rt.train_network(X, y, (8,), "binary", 2, "reduce_weight", mask=mask, **FAST)
    Wc, bc = pr.compact(W, b, mask)
    means, sds = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    feats = ["a", "b", "c", "d"]
    prefix = tmp_path / "net" / "VWA-OL.pruned"
    ex.export_model(
        prefix,
        Wc,
        bc,
        activation="relu",
        task="binary",
        classes=["B", "M"],
        features=feats,
        means=means,
        sds=sds,
    )
    meta = json.loads((tmp_path / "net" / "VWA-OL.pruned.json").read_text())
    assert meta["layer_sizes"] == [4, Wc[0].shape[0], 1] and meta["classes"] == ["B", "M"]
    tensors = safetensors.numpy.load_file(str(tmp_path / "net" / "VWA-OL.pruned.safetensors"))
    assert set(tensors) == {"W0", "W1", "b0", "b1"}
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == [
        "VWA-OL.pruned.json",
        "VWA-OL.pruned.safetensors",
    ]
    model = ex.load_model(prefix)
    X_raw = X * sds + means
    expect = rt.predict(W, b, X, "relu", "binary")
    np.testing.assert_allclose(model["predict"](X_raw), expect, atol=1e-9)
    frame = pd.DataFrame(X_raw, columns=feats)[feats[::-1]]
    np.testing.assert_allclose(model["predict"](frame), expect, atol=1e-9)


def test_export_validation(tmp_path):
    W, b = [np.ones((3, 2)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)]
    with pytest.raises(InputError, match="features"):
        ex.export_model(
            tmp_path / "m",
            W,
            b,
            activation="relu",
            task="binary",
            classes=["x", "y"],
            features=["only-one"],
        )
    with pytest.raises(InputError, match="output units"):
        ex.export_model(
            tmp_path / "m",
            W,
            b,
            activation="relu",
            task="multiclass",
            classes=["x", "y", "z"],
            features=["f", "g"],
        )
    with pytest.raises(InputError, match="sds"):
        ex.export_model(
            tmp_path / "m",
            W,
            b,
            activation="relu",
            task="regression",
            classes=None,
            features=["f", "g"],
            sds=[1.0, 0.0],
        )
    with pytest.raises(InputError, match="must both exist"):
        ex.load_model(tmp_path / "absent")


def test_tie_break_by_magnitude_deletes_exactly_the_fraction() -> None:
    """Large tied groups of Z (grid values) would block the paper's rule; |θ| breaks the tie."""
    from knockoffnet.pruning import prune_masks

    Z = [np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 5.0, 6.0]]), np.array([[1.0, 7.0]])]
    mag = [np.array([[0.9, 0.1, 0.5, 0.2], [0.3, 0.8, 0.05, 0.4]]), np.array([[0.6, 0.7]])]
    paper = prune_masks(Z, 0.3)  # 7 of 10 share Z = 1 > 30 %: the tied group cannot go
    assert sum(int((~m).sum()) for m in paper) == 0
    broken = prune_masks(Z, 0.3, magnitude=mag)
    removed = np.concatenate([(~m).ravel() for m in broken])
    assert removed.sum() == 3  # floor(0.3 * 10)
    # the three smallest |θ| among the Z = 1 ties: 0.1, 0.2, 0.3 (not 0.05, whose Z is 5)
    np.testing.assert_array_equal(
        broken[0], np.array([[True, False, True, False], [False, True, True, True]])
    )
    assert broken[1].all()


def test_compare_predictions_same_rows_with_two_workers():
    """Each fit is seeded by its repeat alone: spreading the fits over processes (the prune
    rule's threads) changes nothing but the timings."""
    X, y = _easy_binary()
    mask = pr.prune_masks(_random_Z([4, 8, 1], seed=11), 0.3)
    args = (X, y, "binary", 2, (8,), mask)
    one, _ = rt.compare_predictions(*args, repeats=3, seed=4, workers=1, **FAST)
    two, summ = rt.compare_predictions(*args, repeats=3, seed=4, workers=2, **FAST)
    assert len(two) == 9 and list(two.repeat) == list(one.repeat)
    pd.testing.assert_frame_equal(one.drop(columns="seconds"), two.drop(columns="seconds"))
    assert (two.seconds > 0).all() and set(summ["method"]) == set(rt.MODES)


def test_float32_rows_are_compared_as_they_are_with_the_same_results():
    """The prune job reads X as float32 (the workflow's layout) and the comparison no longer
    makes a float64 copy of it, which the forked workers counted again in their RSS: the
    networks train in float32 either way, and predictions are made in float64 from the same
    values, so the rows are those of float64 input bit for bit."""
    X, y = _easy_binary(n=200, p=5, seed=3)
    X32 = X.astype(np.float32)
    checked, *_ = rt._check_xy(X32, y, "binary", 2)
    assert checked.dtype == np.float32 and np.shares_memory(checked, X32)
    mask = pr.prune_masks(_random_Z([5, 8, 1], seed=2), 0.3)
    args = ("binary", 2, (8,), mask)
    wide, _ = rt.compare_predictions(X32.astype(np.float64), y, *args, repeats=2, seed=1, **FAST)
    narrow, _ = rt.compare_predictions(X32, y, *args, repeats=2, seed=1, **FAST)
    pd.testing.assert_frame_equal(wide.drop(columns="seconds"), narrow.drop(columns="seconds"))
    every = rt.reduce_weight(
        X32, y, "binary", 2, (8,), _random_Z([10, 8, 1], seed=4), None, np.arange(5), 0.3,
        repeats=1, seed=0, max_epochs=20,
    )  # fmt: skip
    again = rt.reduce_weight(
        X32.astype(np.float64), y, "binary", 2, (8,), _random_Z([10, 8, 1], seed=4), None,
        np.arange(5), 0.3, repeats=1, seed=0, max_epochs=20,
    )  # fmt: skip
    for a, b in zip(every.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reduce_weight_prunes_compares_and_compacts_one_selection():
    X, y = _easy_binary(n=200, p=5, seed=3)
    sizes = [10, 8, 1]  # the path network: 5 features + 5 knockoffs, 8 hidden units
    Z = _random_Z(sizes, seed=4)
    fit = rt.reduce_weight(
        X, y, "binary", 2, (8,), Z, None, np.array([0, 1, 3]), 0.3, repeats=2, seed=0,
        max_epochs=20,
    )  # fmt: skip
    assert [m.shape for m in fit.masks] == [(8, 3), (1, 8)]
    assert set(fit.summary["method"]) == set(rt.MODES)
    assert fit.per_repeat["repeat"].nunique() == 2
    assert fit.weights[0].shape[1] == 3  # compacted to the selected inputs


def test_comparison_rows_subsample_large_cohorts_by_class():
    y = np.array([0] * 80 + [1] * 20)
    assert np.array_equal(rt.comparison_rows(y, "binary", 500, seed=1), np.arange(100))
    rows = rt.comparison_rows(y, "binary", 40, seed=1)
    assert rows.size == 40 and np.all(np.diff(rows) > 0)
    assert (y[rows] == 1).sum() == 8  # the class balance is kept
    assert np.array_equal(rows, rt.comparison_rows(y, "binary", 40, seed=1))
    assert rt.comparison_rows(np.linspace(0, 1, 100), "regression", 30, seed=2).size == 30
