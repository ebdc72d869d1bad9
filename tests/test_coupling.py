"""The coupled dense fit (`training.dense_coupling: columns`, knockoffnet.coupling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knockoffnet import path as P
from knockoffnet.coupling import column_block, couple
from knockoffnet.errors import InputError
from knockoffnet.network import init_net
from knockoffnet.train_data import prepared


def _quiet(_msg: str) -> None:
    pass


def _cohort(n: int = 240, p: int = 6, copies: int = 2, covariates: int = 0, seed: int = 0):
    """x_0² and x_1 drive y; ``copies`` independent knockoff-like columns per feature."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    parts = [X, rng.standard_normal((n, copies * p)), rng.standard_normal((n, covariates))]
    y = (X[:, 0] ** 2 - 1 + X[:, 1] + 0.5 * rng.standard_normal(n) > 0).astype(float)
    return np.hstack(parts).astype(np.float32), y


def _cfg(**kw) -> P.TrainConfig:
    base = dict(hidden=(8,), patience=10, max_epochs=40, learning_rate=None, device="cpu")
    return P.TrainConfig(**{**base, "dense_coupling": "columns", **kw})


def test_coupled_first_layer_is_the_product_and_its_gradients_are_the_chain_rule():
    """θ⁽⁰⁾'s tested block is V ⊙ C (a feature's columns proportional), covariates keep their
    own weights, and ∂/∂V, ∂/∂C equal autograd's through the product."""
    p, columns, cov, units = 5, 3, 2, 2
    d = p * columns + cov
    net = init_net(d, units, (7,), 1, seed=3)
    w0 = net.ws[0].unsqueeze(0).clone()
    before = w0.clone()
    coupling = couple(w0, d, p, cov)
    block = column_block(w0, d, columns, p)
    ratio = block / block[:, :, :1]
    assert torch.allclose(ratio, ratio[:, :1, :, :, :1].expand_as(ratio), atol=1e-5)
    tail = (w0.shape[-1] - cov * (units + 1)) if cov else w0.shape[-1]
    assert torch.equal(w0[..., tail:], before[..., tail:])  # covariates untouched
    expected_v = column_block(before, d, columns, p).sum(2) / columns**0.5
    assert torch.allclose(coupling.v, expected_v)
    # chain rule against autograd
    v = coupling.v.clone().requires_grad_(True)
    c = (coupling.c + torch.rand_like(coupling.c)).requires_grad_(True)
    g0 = torch.randn_like(w0)
    w = w0.clone()
    column_block(w, d, columns, p).copy_(v.unsqueeze(2) * c.unsqueeze(1))
    (w * g0).sum().backward()  # the loss's gradient wrt θ⁽⁰⁾ is g0
    coupling.c = c.detach()
    coupling.v = v.detach()
    gv, gc = coupling.gradients(g0, d)
    assert torch.allclose(gv, v.grad, atol=1e-5) and torch.allclose(gc, c.grad, atol=1e-5)


def test_coupled_dense_fit_keeps_the_product_and_learns():
    """The kept dense fit is a usual network whose tested block stays V ⊙ C through Adam,
    decay and early stopping, with covariates free; it learns the planted signal."""
    U, y = _cohort(n=400, covariates=1, seed=1)
    p, units = 6, 4
    cfg = _cfg(covariates=1, features=p, dense_decay=10)
    fit = P.dense_fit(U, y, cfg, seed=2, log=_quiet)
    w0 = torch.from_numpy(fit["W0"])
    block = column_block(w0, U.shape[1], 3, p)
    ratio = block / block[:, :, :1]
    assert torch.allclose(ratio, ratio[:, :1, :, :, :1].expand_as(ratio), rtol=1e-3, atol=1e-4)
    assert not np.allclose(ratio[:, 0, 1:, :, 0].numpy(), 1.0)  # C moved from its start
    assert fit["val_accuracy"][0] > 0.7
    free = P.dense_fit(U, y, _cfg(covariates=1, features=p, dense_coupling="none"), 2, _quiet)
    free_block = column_block(torch.from_numpy(free["W0"]), U.shape[1], 3, p)
    free_ratio = free_block / free_block[:, :, :1]
    assert not torch.allclose(free_ratio, free_ratio[:, :1, :, :, :1].expand_as(free_ratio))
    assert fit["W0"].shape == free["W0"].shape and units == cfg.units


def test_coupled_fit_treats_a_feature_and_its_copy_alike():
    """Swap x_j ↔ x~_j in the data and in the start network: the coupled fit swaps exactly
    (its start V is symmetric in the columns), so flip-sign holds in distribution."""
    U, y = _cohort(n=240, copies=1, seed=4)
    p, units = 6, 4
    js = np.array([0, 2])
    perm = np.arange(2 * p)
    perm[js], perm[js + p] = js + p, js
    cfg = _cfg(features=p, dense_decay=10, batch_size=60)
    start = P.initial_net(2 * p, cfg, seed=5)
    swapped = type(start)(
        start.ua[perm],
        start.ub[perm],
        [start.ws[0].view(8, 2 * p, units + 1)[:, perm].reshape(8, -1), *start.ws[1:]],
        start.bs,
    )
    fits = []
    for data_u, net in ((U, start), (U[:, perm], swapped)):
        with prepared(data_u, y, cfg, 5, _quiet) as data:
            fits.append(
                P.train_batched(
                    data, np.zeros(1), cfg.at_rows(data.m), 5, net, _quiet, decay=10.0, coupled=True
                )
            )
    a, b = fits
    wa = a["W0"].reshape(1, 8, 2 * p, units + 1)
    wb = b["W0"].reshape(1, 8, 2 * p, units + 1)
    np.testing.assert_allclose(wb, wa[:, :, perm], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b["unit_a"], a["unit_a"][..., perm, :], rtol=1e-4, atol=1e-6)
    assert a["val_loss"][0] == pytest.approx(b["val_loss"][0], rel=1e-5)


def test_coupled_dense_fit_waits_longer():
    """The coupled fit converges slowly: it waits COUPLED_PATIENCE × patience and runs to
    COUPLED_EPOCHS × max_epochs (the path keeps the configured ones)."""
    from knockoffnet.coupling import COUPLED_EPOCHS, COUPLED_PATIENCE

    U, y = _cohort(n=200, seed=3)
    lines: list[str] = []
    fit = P.dense_fit(U, y, _cfg(features=6, patience=4, max_epochs=6), 1, lines.append)
    assert f"patience {int(COUPLED_PATIENCE * 4)}, max_epochs {COUPLED_EPOCHS * 6}" in "\n".join(
        lines
    )
    assert 6 < fit["epochs"][0] <= COUPLED_EPOCHS * 6  # patience 10: at least 11 checks
    free = P.dense_fit(U, y, _cfg(features=6, patience=4, max_epochs=6, dense_coupling="none"), 1)
    assert free["epochs"][0] <= 6


def test_coupling_is_checked_at_the_boundary():
    """Coupling needs Adam and inputs that split into features × columns; the error names
    the key and the fix."""
    with pytest.raises(InputError, match=r"dense_coupling.*adam"):
        _cfg(optimizer="fista", dense_decay=0)
    with pytest.raises(InputError, match="dense_coupling"):
        _cfg(dense_coupling="pairs")
    U, y = _cohort(p=6)
    with pytest.raises(InputError, match="dense_coupling: none"):
        P.dense_fit(U, y, _cfg(features=5), seed=1, log=_quiet)
    with pytest.raises(InputError, match="dense_coupling: none"):
        P.dense_fit(U[:, :6], y, _cfg(features=6), seed=1, log=_quiet)  # no knockoff column
    assert P.TrainConfig().dense_coupling == "auto"


def test_auto_couples_from_its_rows_and_only_under_adam():
    """`dense_coupling: auto` is `columns` from AUTO_COUPLING_ROWS training rows up to
    AUTO_COUPLING_MAX_ROWS, `none` outside, for the rules other than Adam and where the
    tested features are not known; a named coupling stays as named at any size."""
    from knockoffnet.vocabulary import AUTO_COUPLING_MAX_ROWS, AUTO_COUPLING_ROWS, dense_coupling

    assert dense_coupling("auto", AUTO_COUPLING_ROWS) == "columns"
    assert dense_coupling("auto", AUTO_COUPLING_MAX_ROWS - 1) == "columns"
    assert dense_coupling("auto", AUTO_COUPLING_ROWS - 1) == "none"
    assert dense_coupling("auto", AUTO_COUPLING_MAX_ROWS) == "none"
    assert dense_coupling("none", 10**6) == "none"
    assert dense_coupling("columns", 10) == "columns"
    # one place decides that auto couples only Adam's fits (the resource model and the
    # report ask it too), and that auto stays unresolved where the rows are not known
    assert dense_coupling("auto", AUTO_COUPLING_ROWS, "momentum") == "none"
    assert dense_coupling("auto", AUTO_COUPLING_ROWS, "fista") == "none"
    assert dense_coupling("auto", None) == "auto"
    assert dense_coupling("auto", None, "plain") == "none"
    auto = _cfg(dense_coupling="auto", features=5)
    assert auto.at_rows(800).dense_coupling == "columns"
    assert auto.at_rows(320).dense_coupling == "none"
    # tested features not known (a TrainConfig built by hand): free, not an error
    assert _cfg(dense_coupling="auto").at_rows(800).dense_coupling == "none"
    fista = _cfg(dense_coupling="auto", features=5, optimizer="fista", dense_decay=0)
    assert fista.at_rows(10**5).dense_coupling == "none"


def test_auto_fits_the_coupled_dense_network_on_enough_rows():
    """The dense fit under `auto` is the coupled fit from AUTO_COUPLING_ROWS training rows
    (the same network, bit for bit, as naming `columns`) and the free fit below them."""
    from knockoffnet.vocabulary import AUTO_COUPLING_ROWS

    n = int(AUTO_COUPLING_ROWS / 0.8) + 10  # val_fraction 0.2
    U, y = _cohort(n=n, p=4, seed=5)
    fits = {
        c: P.dense_fit(U, y, _cfg(features=4, patience=2, max_epochs=3, dense_coupling=c), 1)
        for c in ("auto", "columns", "none")
    }
    assert np.array_equal(fits["auto"]["W0"], fits["columns"]["W0"])
    assert not np.array_equal(fits["auto"]["W0"], fits["none"]["W0"])
    auto = _cfg(features=4, patience=2, max_epochs=3, dense_coupling="auto")
    small = P.dense_fit(U[:400], y[:400], auto, 1)
    free = P.dense_fit(
        U[:400], y[:400], _cfg(features=4, patience=2, max_epochs=3, dense_coupling="none"), 1
    )
    assert np.array_equal(small["W0"], free["W0"])


def test_coupled_state_rejects_a_penalty():
    """Only the unpenalised dense fit couples: a prox on θ⁽⁰⁾ would not act on V and C."""
    from knockoffnet import optim

    net = init_net(4, 2, (3,), 1, seed=1)
    st = optim.new_state(net.map(lambda t: t.unsqueeze(0)), torch.ones(1), "adam")
    with pytest.raises(ValueError, match="unpenalised"):
        optim.attach(st, couple(st.net.ws[0], 4, 2, 0))
