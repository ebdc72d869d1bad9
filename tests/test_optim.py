"""Proximal step rules (knockoffnet.optim): exact zeros and the right fixed points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knockoffnet import optim
from knockoffnet.network import Net, group_view


def test_soft_threshold_gives_exact_zeros():
    w = torch.tensor([-0.3, -0.1, -1e-9, 0.0, 0.05, 0.1, 0.25])
    out = optim.soft_threshold(w, 0.1)
    expected = torch.tensor([-0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.15])
    assert torch.allclose(out, expected, atol=1e-7)
    dead = w.abs() <= 0.1
    assert (out[dead] == 0.0).all()
    assert not torch.signbit(out[dead]).any()  # +0.0, not -0.0
    per_lambda = optim.soft_threshold(torch.ones(2, 1, 3), torch.tensor([[[0.5]], [[2.0]]]))
    assert per_lambda[0].eq(0.5).all() and per_lambda[1].eq(0.0).all()


def test_group_threshold_shrinks_whole_input_blocks():
    # Λ = 1, h = 2, d = 3 inputs × 2 channels: block norms 5, 0.3, 1
    w = torch.zeros(1, 2, 6)
    w[0, 0, 0:2] = torch.tensor([3.0, 0.0])
    w[0, 1, 0:2] = torch.tensor([0.0, -4.0])
    w[0, 0, 2:4] = torch.tensor([-0.3, 0.0])
    w[0, 1, 4:6] = torch.tensor([0.6, -0.8])
    out = optim.group_threshold_(w.clone(), torch.tensor(0.5).view(1, 1, 1, 1), 3)
    v = group_view(out, 3)
    np.testing.assert_allclose(v[0, :, 0].numpy(), (group_view(w, 3)[0, :, 0] * 0.9).numpy())
    assert (v[0, :, 1] == 0).all() and not torch.signbit(v[0, :, 1]).any()
    np.testing.assert_allclose(v[0, :, 2].numpy(), (group_view(w, 3)[0, :, 2] * 0.5).numpy())


def _quadratic_net(n_lam: int = 1) -> Net:
    return Net(None, None, [torch.zeros(n_lam, 1, 4)], [torch.zeros(n_lam, 1)])


@pytest.mark.parametrize("optimizer", ["adam", "plain", "momentum"])
@pytest.mark.parametrize("kind", ["l1", "group"])
def test_fixed_point_is_the_penalised_optimum(optimizer, kind):
    """Loss ½‖w − c‖²: the l1 optimum soft-thresholds c by λ/2m, the group one shrinks the
    input blocks; Adam's preconditioned prox must reach the same point as plain prox-GD."""
    c = torch.tensor([[[2.0, -0.05, 0.8, -1.5]]])
    pen = torch.tensor([0.3], dtype=torch.float64)
    st = optim.new_state(_quadratic_net(), pen, optimizer)
    lr = {"adam": 0.01, "plain": 0.5, "momentum": 0.1}[optimizer]
    for _ in range(4000):
        grad = Net(None, None, [st.net.ws[0] - c], [torch.zeros(1, 1)])
        optim.step(st, grad, optimizer, lr, 0.9, kind, n_inputs=4)
    w = st.net.ws[0][0, 0]
    expected = torch.sign(c[0, 0]) * torch.clamp(c[0, 0].abs() - 0.3, min=0)  # blocks of size 1
    assert torch.allclose(w, expected, atol=2e-3)
    assert w[1] == 0.0  # |c| ≤ λ/2m: exactly zero, not just small


def test_adam_keeps_lambdas_independent():
    """A λ's trajectory does not depend on the other λ in the batch."""
    torch.manual_seed(0)
    c = torch.randn(1, 1, 4)
    pens = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)

    def run(rows):
        st = optim.new_state(_quadratic_net(len(rows)), pens[rows], "adam")
        for _ in range(50):
            grad = Net(None, None, [st.net.ws[0] - c], [torch.zeros(len(rows), 1)])
            optim.step(st, grad, "adam", 0.05, 0.9, "group", n_inputs=2)
        return st.net.ws[0]

    whole = run([0, 1, 2])
    assert torch.equal(whole[1:2], run([1]))


def test_adam_first_layer_step_shrinks_with_fan_in():
    """Adam's first step moves each weight by the step size; beyond ADAM_FAN_IN first-layer
    inputs θ⁽⁰⁾ (and the units before it) move by step × ADAM_FAN_IN / fan-in, the other
    layers by the full step. Up to ADAM_FAN_IN nothing changes."""
    lr = 0.01
    for fan_in in (optim.ADAM_FAN_IN // 2, 4 * optim.ADAM_FAN_IN):
        d = fan_in // 2
        ws = [torch.zeros(1, 3, fan_in), torch.zeros(1, 1, 3)]
        net = Net(
            torch.zeros(1, d, 1), torch.zeros(1, d, 1), ws, [torch.zeros(1, 3), torch.zeros(1, 1)]
        )
        st = optim.new_state(net, torch.zeros(1, dtype=torch.float64), "adam")
        grad = net.map(lambda t: torch.ones_like(t))
        optim.step(st, grad, "adam", lr, 0.9, "l1", n_inputs=d)
        f = min(1.0, optim.ADAM_FAN_IN / fan_in)
        assert f == optim.first_layer_scale(fan_in)
        np.testing.assert_allclose(st.net.ws[0].abs().max(), lr * f, rtol=1e-4)
        np.testing.assert_allclose(st.net.ua.abs().max(), lr * f, rtol=1e-4)
        np.testing.assert_allclose(st.net.ws[1].abs().max(), lr, rtol=1e-4)
