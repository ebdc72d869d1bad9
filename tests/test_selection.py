"""From per-run importances to the published tables (knockoffnet.selection)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from knockoffnet.filters import knockoff_threshold
from knockoffnet.selection import build_tables, effect_direction, run_effects, run_statistics

P = 40


def _selection(**ebh) -> dict:
    return {
        "q": 0.2,
        "offset": 1,
        "vwa_ratio": 0.5,
        "vwa_oml_ratio": 0.25,
        "statistic": "importance",
        "combine": "mean",
        "ebh": {"alpha_kn": None, "offset": 1, "statistic": "ML", **ebh},
    }


def _runs(draws: int, seeds: int, seed: int = 0) -> list[tuple[int, int, dict]]:
    """Importances where features 0-11 beat their knockoffs, noisily per run."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(draws):
        for s in range(seeds):
            imp = rng.exponential(size=(2, 2 * P))
            imp[:, :12] += rng.uniform(1.5, 6.0, size=(2, 12))
            out.append((d, s, {"importance_ol": imp[0], "importance_ml": imp[1],
                               "effects": rng.standard_normal(P)}))  # fmt: skip
    return out


def _tables(runs, selection):
    meta = {"features": [f"x{j}" for j in range(P)], "p": P, "task": "binary",
            "means": [0.0] * P, "sds": [1.0] * P}  # fmt: skip
    stats = [run_statistics(a, d, s, P, selection) for d, s, a in runs]
    return build_tables(stats, meta, selection)


def test_published_ml_is_the_seed_mean_of_draw_zero():
    runs = _runs(draws=2, seeds=3)
    features = _tables(runs, _selection())["features"]
    mean = np.mean([a["importance_ml"] for d, _, a in runs if d == 0], axis=0)
    np.testing.assert_allclose(features["ML_W"], mean[:P] - mean[P:])
    T = knockoff_threshold(features["ML_W"].to_numpy(), 0.2, 1)
    np.testing.assert_array_equal(features["selected_ML"], features["ML_W"] >= T)


def test_ebh_with_one_draw_is_the_knockoff_plus_filter_of_its_statistic():
    for seed in range(5):
        features = _tables(_runs(draws=1, seeds=2, seed=seed), _selection())["features"]
        np.testing.assert_array_equal(features["selected_ebh"], features["selected_ML"])
        assert set(np.unique(features["ebh_frequency"])) <= {0.0, 1.0}


@pytest.mark.parametrize("offset", [0, 1])
def test_ebh_derandomises_over_draws(offset):
    runs = _runs(draws=4, seeds=2, seed=3)
    tables = _tables(runs, _selection(offset=offset, alpha_kn=0.1))
    features = tables["features"]
    # e-values are averaged over the 4 draws: a feature's pass frequency is a multiple of 1/4
    assert np.allclose(features["ebh_frequency"] * 4, np.round(features["ebh_frequency"] * 4))
    assert (features["evalue"] > 0).eq(features["ebh_frequency"] > 0).all()
    picked = set(features.loc[features["selected_ebh"], "feature"])
    if offset == 1:  # offset 0 passes more draws with smaller e-values (more negatives at T)
        assert {f"x{j}" for j in range(12)} <= picked
    row = tables["thresholds"].query("filter == 'ebh'")
    assert row["n_selected"].item() == features["selected_ebh"].sum()


def test_direction_needs_every_run_to_agree():
    """+ or − only where every run's effect has that sign; a run that does not use the feature
    (effect 0) or one of the other sign makes it 0; multiclass has no single direction."""
    values = np.array(
        [
            [0.5, -0.2, 0.4, 0.0, 0.3, 0.0],
            [0.1, -0.9, -0.1, 0.0, 0.2, 0.0],
            [2.0, -0.1, 0.3, 0.0, 0.0, 0.0],
            [0.4, -0.3, 0.2, 0.7, 0.1, 0.0],
        ]
    )
    got = effect_direction(values, "binary")
    np.testing.assert_array_equal(got, ["+", "−", "0", "0", "0", "0"])
    # the sign of the mean, the old rule, named a direction for features 2-4
    assert (values.mean(axis=0)[2:5] > 0).all()
    assert set(effect_direction(np.abs(values), "multiclass")) == {"±"}


def test_features_table_direction_comes_from_every_run():
    runs = _runs(draws=1, seeds=4)
    for k, (_, _, a) in enumerate(runs):
        a["effects"] = np.zeros(P)
        a["effects"][0] = 1.0 + k  # + in every run
        a["effects"][1] = -1.0  # − in every run
        a["effects"][2] = 5.0 if k == 0 else 0.0  # one run of four uses it
        a["effects"][3] = (-1.0) ** k  # the runs disagree
    features = _tables(runs, _selection())["features"]
    assert list(features["direction"][:5]) == ["+", "−", "0", "0", "0"]
    assert features["effect_sd"][2] == pytest.approx(1.25)


def test_group_direction_is_that_of_the_members_raised_together():
    """Each run's network uses another member of a tight group: no member has a direction
    of its own, the group (the members' effects summed per run) has one."""
    runs = _runs(draws=1, seeds=4)
    for k, (_, _, a) in enumerate(runs):
        a["effects"] = np.zeros(P)
        a["effects"][k % 3] = 0.5 + k  # group g0 = features 0-2: one member per run
        a["effects"][3] = 1.0 if k % 2 else -1.0  # group g1 = features 3-4: runs disagree
    labels = np.array([0, 0, 0, 1, 1, *range(2, P - 3)])
    stats = [run_statistics(a, d, s, P, _selection(), labels) for d, s, a in runs]
    names = [f"x{j}" for j in range(P)]
    groups = pd.DataFrame(
        {"feature": names, "group": [f"g{g}" for g in labels],
         "group_size": np.bincount(labels)[labels], "representative": names}
    )  # fmt: skip
    meta = {"features": names, "p": P, "task": "binary", "means": [0.0] * P, "sds": [1.0] * P}
    features = build_tables(stats, meta, _selection(), groups)["features"]
    assert list(features["direction"][:5]) == ["0"] * 5
    assert list(features["group_direction"][:5]) == ["+", "+", "+", "0", "0"]
    np.testing.assert_allclose(features["group_effect_sd"][:3], np.mean([0.5, 1.5, 2.5, 3.5]))
    # without groups each feature's group columns are its own
    plain = _tables(runs, _selection())["features"]
    np.testing.assert_array_equal(plain["group_direction"], plain["direction"])
    np.testing.assert_allclose(plain["group_effect_sd"], plain["effect_sd"])


def test_group_effects_sum_each_runs_members_per_class():
    """run_effects with group labels, against a plain loop: each run's members summed per
    class, every member given its group's sum (computed by bincount, not a p × G matrix,
    which at 20,000 features in 4,000 groups held 640 MB)."""
    rng = np.random.default_rng(5)
    labels = np.array([2, 0, 2, 1, 0, 2, 3])
    effects = rng.normal(size=(3, labels.size, 3))  # runs × features × classes
    runs = [SimpleNamespace(effects=e) for e in effects]
    summed = np.stack([[e[labels == labels[j]].sum(axis=0) for j in range(labels.size)]
                       for e in effects])  # fmt: skip
    centred = summed - summed.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(run_effects(runs, "multiclass", labels), np.abs(centred).mean(2))
    binary = [SimpleNamespace(effects=e[:, :1]) for e in effects]
    np.testing.assert_allclose(run_effects(binary, "binary", labels), summed[:, :, 0])
    np.testing.assert_array_equal(run_effects(binary, "binary"), effects[:, :, 0])
