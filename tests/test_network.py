"""The knockoff network (knockoffnet.network): per-input units, batched kernels, summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knockoffnet import network as N
from knockoffnet.errors import InputError
from knockoffnet.importance import linearised_first_layer, run_importances
from knockoffnet.vocabulary import ACTIVATIONS


def _batched(d: int, units: int, hidden: tuple[int, ...], k: int, n_lam: int, seed: int = 0):
    nets = [N.init_net(d, units, hidden, k, seed + i) for i in range(n_lam)]
    return nets[0].replace(
        [
            torch.stack([n.tensors()[i] for n in nets]).double()
            for i in range(len(nets[0].tensors()))
        ]
    )


def _autograd_loss(net: N.Net, x, y, act: str, task: str) -> torch.Tensor:
    """The same batched network written with autograd-friendly ops only."""
    f = N.act_fn(act)
    outs = []
    for j in range(net.ws[0].shape[0]):
        one = net.map(lambda t, j=j: t[j])
        outs.append(N.forward_one(one, x, act))
    del f
    out = torch.stack(outs)
    return N.loss_rows(out, y, task).mean(1).sum()


@pytest.mark.parametrize("units", [0, 3])
@pytest.mark.parametrize("task,k", [("binary", 1), ("multiclass", 3), ("regression", 1)])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hand_written_gradients_match_autograd(units, task, k, act):
    gen = torch.Generator().manual_seed(0)
    d, rows = 4, 9
    net = _batched(d, units, (5, 4), k, n_lam=3)
    net = net.map(lambda t: t + 0.1 * torch.randn(t.shape, generator=gen, dtype=t.dtype))
    x = torch.randn(rows, d, generator=gen, dtype=torch.float64)
    if task == "regression":
        y = torch.randn(rows, generator=gen, dtype=torch.float64)
    else:
        y = torch.randint(0, max(k, 2), (rows,), generator=gen)
    grads = N.gradients(net.map(torch.clone), x, y, act, task)
    leaves = [t.clone().requires_grad_() for t in net.tensors()]
    auto = torch.autograd.grad(_autograd_loss(net.replace(leaves), x, y, act, task), leaves)
    for a, b in zip(auto, grads.tensors(), strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_units_zero_is_the_papers_mlp():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    bs = [rng.standard_normal(5), rng.standard_normal(2)]
    U = rng.standard_normal((30, 4))
    net = N.net_from_arrays({"W0": ws[0], "W1": ws[1], "b0": bs[0], "b1": bs[1]})
    out = N.predict(net, U, "tanh")
    np.testing.assert_allclose(out, np.tanh(U @ ws[0].T + bs[0]) @ ws[1].T + bs[1], atol=1e-12)


def test_predict_fills_every_row_block_in_order(monkeypatch):
    # predict writes each row block into one preallocated output (no list of parts between
    # the blocks' temporaries): the last, short block and the order must still be right.
    monkeypatch.setattr(N, "EXPANSION_BUDGET", 1)  # 16 rows per block, the floor
    rng = np.random.default_rng(2)
    ws = [rng.standard_normal((5, 4)), rng.standard_normal((3, 5))]
    bs = [rng.standard_normal(5), rng.standard_normal(3)]
    net = N.net_from_arrays({"W0": ws[0], "W1": ws[1], "b0": bs[0], "b1": bs[1]})
    U = rng.standard_normal((50, 4))  # blocks of 16, 16, 16 and 2 rows
    assert N.eval_rows(4, 1) == 16
    expected = np.tanh(U @ ws[0].T + bs[0]) @ ws[1].T + bs[1]
    np.testing.assert_allclose(N.predict(net, U, "tanh"), expected, atol=1e-12)
    assert N.predict(net, U[:0], "tanh").shape == (0, 3)


def test_units_feed_each_input_through_its_own_channels():
    rng = np.random.default_rng(1)
    d, k = 3, 2
    a, b = rng.standard_normal((d, k)), rng.standard_normal((d, k))
    w0 = rng.standard_normal((4, d * (k + 1)))
    arrays = {"W0": w0, "b0": np.zeros(4), "W1": rng.standard_normal((1, 4)), "b1": np.zeros(1)}
    net = N.net_from_arrays({**arrays, "unit_a": a, "unit_b": b})
    U = rng.standard_normal((7, d))
    phi = np.concatenate([U[:, :, None], np.maximum(U[:, :, None] * a + b, 0)], axis=2)
    expected = np.maximum(phi.reshape(7, -1) @ w0.T, 0) @ arrays["W1"].T
    np.testing.assert_allclose(N.predict(net, U, "relu"), expected, atol=1e-12)
    assert set(N.net_arrays(net)) == {"W0", "b0", "W1", "b1", "unit_a", "unit_b"}


def test_effects_and_importance_match_finite_differences():
    rng = np.random.default_rng(2)
    net = N.init_net(4, 3, (6,), 3, seed=5).map(lambda t: t.double())
    U = rng.standard_normal((40, 4))
    summ = N.input_summaries(net, U, "tanh", block=16)  # several blocks
    eps = 1e-6
    grads = np.empty((40, 4, 3))
    for j in range(4):
        e = np.zeros(4)
        e[j] = eps
        grads[:, j] = (N.predict(net, U + e, "tanh") - N.predict(net, U - e, "tanh")) / (2 * eps)
    np.testing.assert_allclose(summ["effects"], grads.mean(0), atol=1e-6)
    centred = grads - grads.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(summ["importance"], (centred**2).sum(2).mean(0), atol=1e-6)


def test_importance_does_not_cancel_a_symmetric_effect():
    """f(u) = relu(u) + relu(−u) = |u|: mean derivative 0, squared derivative 1."""
    arrays = {
        "W0": np.array([[1.0, 0.0], [-1.0, 0.0]]),
        "b0": np.zeros(2),
        "W1": np.array([[1.0, 1.0]]),
        "b1": np.zeros(1),
    }
    net = N.net_from_arrays(arrays)
    U = np.column_stack([np.linspace(-2, 2, 400), np.zeros(400)])
    summ = N.input_summaries(net, U, "relu")
    assert abs(summ["effects"][0, 0]) < 0.01
    assert summ["importance"][0] == pytest.approx(1.0)
    assert summ["importance"][1] == 0.0


def test_run_importances_group_norm_and_collapsed_first_layer():
    rng = np.random.default_rng(3)
    net = N.init_net(4, 2, (5,), 1, seed=1).map(lambda t: t.double())
    U = rng.standard_normal((50, 4))
    z0 = rng.random((5, 12))
    out = run_importances(net, z0, U, p=2, activation="relu")
    w0 = net.ws[0].numpy().reshape(5, 4, 3)
    np.testing.assert_allclose(out["importance_ol"], np.sqrt((w0**2).sum((0, 2))))
    np.testing.assert_array_equal(out["Z0_input"], z0.reshape(5, 4, 3).max(2))
    assert out["effects"].shape == (2, 1) and out["effect_magnitude"].shape == (2,)
    # The linearised first layer reproduces the mean derivative of the first layer's output.
    lin = linearised_first_layer(net, U, "relu")
    slopes = (U[:, :, None] * net.ua.numpy() + net.ub.numpy() > 0) * net.ua.numpy()
    channel = np.concatenate([np.ones((50, 4, 1)), slopes], axis=2).mean(0)
    np.testing.assert_allclose(lin, (w0 * channel).sum(2))


def test_bad_network_inputs_raise():
    net = N.init_net(3, 0, (4,), 1, seed=0).map(lambda t: t.double())
    with pytest.raises(InputError):
        N.predict(net, np.zeros((5, 2)), "relu")
    with pytest.raises(InputError):
        N.predict(net, np.full((5, 3), np.nan), "relu")
    with pytest.raises(InputError):
        N.predict(net, np.zeros((5, 3)), "sigmoid")
    with pytest.raises(InputError):
        N.net_from_arrays({"b0": np.zeros(2)})
