"""The HTML report renders from synthetic results for binary, multiclass and empty cohorts."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from knockoffnet import report
from knockoffnet.simulation.plots import fig_fdr_power
from knockoffnet.simulation.scoring import fdp_power, summarise

from fixtures_report import write_fake_results, write_fake_simulation

# One worker renders each case's page once (module fixture `page`) for every test here.
pytestmark = pytest.mark.xdist_group("report")

PNG = b"\x89PNG\r\n\x1a\n"
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
CASES = {
    "binary": {"task": "binary"},
    "multiclass": {"task": "multiclass"},
    "empty": {"task": "binary", "empty": True},
}


class PageParser(HTMLParser):
    """Checks tag balance and collects img sources, links and table cells by table id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])
        if tag == "table":
            self._table = a.get("id", f"table{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module", params=list(CASES))
def page(request, tmp_path_factory) -> SimpleNamespace:
    """Render each case once; every test below reads the same page."""
    root = tmp_path_factory.mktemp(request.param)
    results = root / "results" / "fake"
    write_fake_results(results, **CASES[request.param])
    figs = report.make_figures(results, root / "figures")
    truth, scores = None, []
    if request.param == "binary":  # the binary case is a simulated cohort
        features = json.loads((results / "data" / "meta.json").read_text())["features"]
        truth, scores = write_fake_simulation(root / "simulation", features)
        table = pd.concat(map(pd.read_csv, scores), ignore_index=True)
        figs["fdr_power"] = fig_fdr_power(
            summarise(table), root / "figures" / "fdr_power.png", table[table["replicate"] == 0]
        )
    out = results / "report.html"
    report.render_report(results, figs, out, truth=truth, scores=scores)
    html = out.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return SimpleNamespace(
        truth=truth,
        scores=scores,
        case=request.param,
        results=results,
        figs=figs,
        html=html,
        parser=parser,
        text=" ".join(" ".join(parser.text).split()),
    )


def test_figures_are_written_as_png(page):
    expected = set(report.FIGURES) | ({"fdr_power"} if page.case == "binary" else set())
    assert set(page.figs) == expected
    for name, path in page.figs.items():
        assert path.name == f"{name}.png"
        assert path.read_bytes()[:8] == PNG


def test_html_is_well_formed(page):
    assert page.html.startswith("<!DOCTYPE html>")
    assert page.parser.errors == []
    assert page.parser.stack == []


def test_every_image_is_an_inline_png(page):
    imgs = page.parser.imgs
    assert len(imgs) >= 6
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG and len(data) > 1000


def test_no_external_resources(page):
    assert "http://" not in page.html and "https://" not in page.html
    assert all(link.startswith("#") for link in page.parser.links)
    assert "<script" not in page.html and "<link" not in page.html


def test_selected_features_appear_with_table_numbers(page):
    selected = pd.read_csv(page.results / "selected.tsv", sep="\t")
    for flt in report.FILTERS:
        rows = selected[selected["filter"] == flt]
        table = page.parser.tables.get(f"sel-{flt}", [])
        for _, r in rows.iterrows():
            want = [
                r["feature"],
                report.fmt_num(r["W"]),
                report.fmt_freq(r["frequency"]),
                report.fmt_q(r["qvalue"]),
            ]
            assert any(row[:1] + row[2:5] == want for row in table), (flt, want)
        if rows.empty:
            assert f'id="sel-{flt}"' in page.html and "Nothing selected." in page.html


def test_summary_names_recommended_features(page):
    run = json.loads((page.results / "run.json").read_text())
    selected = pd.read_csv(page.results / "selected.tsv", sep="\t")
    rec = selected[selected["filter"] == run["recommended_filter"]]
    summary = page.text.split("2 Selected features by filter")[0]
    for _, r in rec.iterrows():
        assert f"{r['feature']} (" in summary
        assert f"q = {report.fmt_q(r['qvalue'])}" in summary
    if rec.empty:
        assert "selected no feature" in summary


@pytest.mark.parametrize("page", ["empty"], indirect=True)
def test_empty_selection_explains_infinite_threshold(page):
    thresholds = pd.read_csv(page.results / "thresholds.tsv", sep="\t")
    for note in thresholds["note"].dropna().unique():
        assert " ".join(note.split()) in page.text
    assert "T = ∞" in page.text
    assert "Not run: Reduce Weight" in page.text
    assert "Warning, knockoff draw 1" in page.text


def test_simulated_cohort_is_scored_against_its_truth(page):
    if page.truth is None:
        assert "truth-table" not in page.parser.tables
        assert "Against the known truth" not in page.html
        return
    relevant = json.loads(page.truth.read_text())["relevant"]
    selected = pd.read_csv(page.results / "selected.tsv", sep="\t")
    scores = pd.concat(map(pd.read_csv, page.scores), ignore_index=True)
    at_q = scores[np.isclose(scores["q"], report.load_results(page.results).q)]
    design = summarise(at_q).set_index("filter")
    rows = {row[0].replace("recommended", ""): row for row in page.parser.tables["truth-table"][2:]}
    assert set(rows) == {*report.FILTERS, "peer-rf"}
    for flt in report.FILTERS:
        sel = selected.loc[selected["filter"] == flt, "feature"].tolist()
        n_sel, fdp, power = fdp_power(sel, relevant)
        false = [f for f in sel if f not in relevant]
        want = [str(n_sel), str(n_sel - len(false)), str(len(false))]
        want += [report.fmt_num(fdp), report.fmt_num(power)]
        want += [report.fmt_pm(design.loc[flt, "fdp_mean"], design.loc[flt, "fdp_se"])]
        assert rows[flt][1:7] == want, flt
        assert rows[flt][8] == (", ".join(false) or "none")
    peer = at_q[(at_q["replicate"] == 0) & (at_q["filter"] == "peer-rf")].iloc[0]
    assert rows["peer-rf"][1] == str(peer["n_selected"])
    assert rows["peer-rf"][4] == report.fmt_num(peer["fdp"])
    assert any(f"{relevant[0]}, {relevant[1]}" in t for t in [page.text])
    assert page.html.count('id="fig-fdr_power"') == 1


def test_pruning_and_class_labels(page):
    meta = json.loads((page.results / "data" / "meta.json").read_text())
    labels = [row[:2] for row in page.parser.tables["labels"][1:]]
    assert labels == [[name, str(code)] for code, name in enumerate(meta["classes"])]
    if page.case == "empty":
        return
    prediction = page.parser.tables["prediction"]
    assert {"General", "Dropout", "Reduce Weight"} <= {row[1] for row in prediction[1:]}
    assert "all features" in {row[0] for row in prediction[1:]}


def test_benchmarks_are_summarised_per_rule(page):
    rows = {row[0]: row for row in page.parser.tables["benchmarks"][1:]}
    assert rows["train"][1] == "6"
    assert set(rows) == {"ingest", "knockoffs", "train", "select", "all rules"}


def test_render_without_figures_or_optional_files(tmp_path):
    write_fake_results(tmp_path, task="multiclass", empty=True, n_seeds=1, p=5)
    (tmp_path / "run.json").unlink()
    out = tmp_path / "r.html"
    report.render_report(tmp_path, {}, out)
    parser = PageParser()
    parser.feed(out.read_text(encoding="utf-8"))
    assert parser.errors == [] and parser.imgs == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.31178, "0.312"),
        (-1.5e-5, "−1.50×10⁻⁵"),
        (12.0, "12.0"),
        (123456.0, "123,000"),
        (float("inf"), "∞"),
        (float("nan"), "–"),
        (0.0, "0"),
        (9.9996, "10.0"),
    ],
)
def test_fmt_num(value, text):
    assert report.fmt_num(value) == text


def test_other_formatters():
    assert report.fmt_q(0.0004) == "<0.001" and report.fmt_q(0.1667) == "0.167"
    assert report.fmt_freq(2 / 3) == "67%"
    assert report.fmt_signed(0.5) == "+0.500" and report.fmt_signed(-0.5) == "−0.500"
    assert report.fmt_pm(0.9312, 0.0151) == "0.931 ± 0.015"
    assert report.sqrt_ticks(0.5) == [0.0, 0.02, 0.1, 0.2, 0.5]


def test_alive_neurons_propagates_removals():
    m0 = np.array([[1, 1, 0], [0, 0, 1]], dtype=bool)  # hidden 2 is fed only by input 3
    m1 = np.array([[1, 0]], dtype=bool)  # ...and has no outgoing weight: input 3 is stranded
    alive = report.alive_neurons([m0, m1])
    assert alive[0].tolist() == [True, True, False]
    assert alive[1].tolist() == [True, False]
    assert alive[2].tolist() == [True]


def test_network_placeholder_when_not_pruned(tmp_path):
    write_fake_results(tmp_path, empty=True, n_seeds=1, p=5)
    res = report.load_results(tmp_path)
    path = report.fig_network(res, tmp_path / "network.png")
    assert path.read_bytes()[:8] == PNG
    assert not any(Path(tmp_path / "pruning").glob("masks_*.npz"))


def test_network_label_names_the_drawn_filter(tmp_path):
    """When the recommended filter selected nothing, prune draws all features; the page says so."""
    write_fake_results(tmp_path, task="binary", n_seeds=1, p=6)
    res = report.load_results(tmp_path)
    flt = res.recommended
    mask_file = tmp_path / "pruning" / f"masks_{flt}.npz"
    masks = [np.ones((4, 6), bool), np.ones((1, 4), bool)]
    np.savez(
        mask_file,
        inputs=np.array([f"f{j}" for j in range(6)]),
        filter=np.array("all features"),
        mask0=masks[0],
        mask1=masks[1],
    )
    res = report.load_results(tmp_path)  # the files are fixed when the results are loaded
    assert report.masks_label(res, flt) == f"all features ({flt} selected none)"
    figs = report.make_figures(tmp_path, tmp_path / "figures")
    out = tmp_path / "r.html"
    report.render_report(tmp_path, figs, out)
    assert f"Reduce Weight network for all features ({flt} selected none)" in out.read_text(
        encoding="utf-8"
    )


def test_learning_table_lists_every_run_and_its_mean(page):
    table = page.parser.tables["learning-table"]
    stats = pd.read_csv(page.results / "statistics.tsv", sep="\t")
    runs = stats.drop_duplicates(["draw", "seed"])
    assert len(table) == 1 + len(runs) + 1  # header, one row per run, the mean
    assert table[0][2] == "decay" and table[-1][0] == "mean"
    assert table[-1][3] == report.fmt_num(runs["chosen_score"].mean())
    # each run shows the decay its dense fit kept, the last row how often each was kept
    assert [r[2] for r in table[1:-1]] == [report.fmt_num(d) for d in runs["dense_decay"]]
    kept = runs["dense_decay"].value_counts()
    assert table[-1][2] == ", ".join(
        f"{report.fmt_num(d)} ×{kept[d]}" for d in sorted(kept.index, reverse=True)
    )
    assert "learned less than a simple model" not in page.text  # chosen ≈ reference here


def test_learning_table_shows_a_dash_for_results_without_the_kept_decay(tmp_path):
    write_fake_results(tmp_path, task="binary", empty=False, n_seeds=2, p=6)
    stats = pd.read_csv(tmp_path / "statistics.tsv", sep="\t")
    stats.drop(columns="dense_decay").to_csv(tmp_path / "statistics.tsv", sep="\t", index=False)
    check = report.learning_check(report.load_results(tmp_path))
    assert len(check["rows"]) == 4  # two draws × two seeds
    assert {r["decay"] for r in check["rows"]} == {report.fmt_num(np.nan)}
    assert check["mean"]["decay"] == report.fmt_num(np.nan)


def test_learning_check_warns_when_the_network_lags_the_reference(tmp_path):
    write_fake_results(tmp_path, task="binary", empty=False, n_seeds=2, p=6)
    stats = pd.read_csv(tmp_path / "statistics.tsv", sep="\t")
    stats["chosen_score"] = 0.55  # the reference stays at 0.82
    stats.to_csv(tmp_path / "statistics.tsv", sep="\t", index=False)
    check = report.learning_check(report.load_results(tmp_path))
    assert "0.270 below the gradient-boosting reference" in check["warning"]


def test_manhattan_plot_for_genotype_cohorts(tmp_path):
    write_fake_results(tmp_path, task="binary", n_seeds=1, p=6)
    meta_path = tmp_path / "data" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert report.load_results(tmp_path).meta.get("variants") is None
    other = report.make_figures(tmp_path, tmp_path / "figures")["manhattan"]
    assert other.read_bytes()[:8] == PNG  # a placeholder: the page does not show it
    report.render_report(tmp_path, {"manhattan": other}, tmp_path / "plain.html")
    assert 'id="fig-manhattan"' not in (tmp_path / "plain.html").read_text(encoding="utf-8")
    meta["variants"] = {
        "chromosome": ["1", "1", "2", "2", "10", "X"],
        "position": [5, 9, 1, 4, 7, 2],
    }
    meta_path.write_text(json.dumps(meta))
    figs = report.make_figures(tmp_path, tmp_path / "figures")
    assert figs["manhattan"].read_bytes()[:8] == PNG
    report.render_report(tmp_path, figs, tmp_path / "geno.html")
    assert 'id="fig-manhattan"' in (tmp_path / "geno.html").read_text(encoding="utf-8")
    # the y axis grades every variant by the knockoff q-value of the statistic the
    # recommended filter is built on (the aggregated filters' own q are all or nothing)
    res = report.load_results(tmp_path)
    stat = {"VWA-OL": "OL", "VWA-ML": "ML", "VWA-OML": "ML", "OL": "OL", "ML": "ML"}
    assert report.manhattan_statistic(res) == stat.get(res.recommended, "ML")
    points = report.manhattan_points(res).set_index("feature")
    qvalues = res.features.set_index("feature")[f"{report.manhattan_statistic(res)}_qvalue"]
    np.testing.assert_allclose(points["y"], -np.log10(qvalues.astype(float)[points.index]))
    assert list(points["chrom"]) == ["1", "1", "2", "2", "10", "X"]
    assert points["x"].is_monotonic_increasing  # 1 < 2 < 10 < X, positions laid end to end
    res.run["recommended_filter"] = "ebh"
    res.config.setdefault("selection", {})["ebh"] = {"statistic": "OL"}
    assert report.manhattan_statistic(res) == "OL"


def test_auto_copies_are_reported_as_the_draws_resolved_them(tmp_path):
    """copies: auto resolves per cohort inside the knockoff job; the report reads κ from the
    draws' diagnostics, not the config's word, for the method row and the minimum selection."""
    write_fake_results(tmp_path, task="binary", n_seeds=1, p=6)
    run = json.loads((tmp_path / "run.json").read_text())
    run["config"].setdefault("knockoffs", {})["copies"] = "auto"
    (tmp_path / "run.json").write_text(json.dumps(run))
    for path in (tmp_path / "knockoffs").glob("draw*_diagnostics.tsv"):
        diag = pd.read_csv(path, sep="\t")
        diag["copies"] = 3
        diag.to_csv(path, sep="\t", index=False)
    res = report.load_results(tmp_path)
    assert res.copies == 3
    out = tmp_path / "auto.html"
    report.render_report(tmp_path, {}, out)
    page = out.read_text(encoding="utf-8")
    assert (
        "3 copies per draw (multiple knockoffs: a feature must beat every copy, chosen by copies: auto)"
        in page
    )


def test_block_wise_draws_say_so_in_the_diagnostics_table(tmp_path):
    """A draw made block by block (knockoffs.sampling) names its blocks and the largest
    correlation its cuts leave out, flagged or not."""
    write_fake_results(tmp_path, task="binary", n_seeds=1, p=6)
    for path in (tmp_path / "knockoffs").glob("draw*_diagnostics.tsv"):
        diag = pd.read_csv(path, sep="\t")
        diag["sampling"], diag["blocks"], diag["max_cross_block_corr"] = "blocks", 14, 0.4217
        diag.to_csv(path, sep="\t", index=False)
    out = tmp_path / "blocks.html"
    report.render_report(tmp_path, {}, out)
    assert "model-x, 14 blocks (largest cross-block |corr| 0.422)" in out.read_text(
        encoding="utf-8"
    )


def test_grouped_run_names_its_selected_groups(tmp_path):
    """Group knockoffs (issue 15): the summary and the filter's table name each selected group
    with its members, the method row says how the groups were made, and an empty selection
    explains the smaller minimum that knockoff copies allow."""
    write_fake_results(tmp_path, task="binary", n_seeds=1, p=6)
    features = pd.read_csv(tmp_path / "features.tsv", sep="\t")
    names = features["feature"].tolist()
    groups = {n: ("G1" if j < 3 else n) for j, n in enumerate(names)}
    features["group"] = features["feature"].map(groups)
    features["group_size"] = [3, 3, 3, 1, 1, 1]
    features["group_effect_sd"] = [0.8, 0.8, 0.8, 0.1, 0.0, -0.2]
    features["group_direction"] = ["+", "+", "+", "0", "0", "-"]
    features.to_csv(tmp_path / "features.tsv", sep="\t", index=False)
    selected = pd.read_csv(tmp_path / "selected.tsv", sep="\t")
    selected["group"] = selected["feature"].map(groups)
    selected.to_csv(tmp_path / "selected.tsv", sep="\t", index=False)
    run = json.loads((tmp_path / "run.json").read_text())
    run["config"].setdefault("knockoffs", {}).update(groups="auto", group_cutoff=0.5, copies=5)
    run["config"]["training"]["check_rows"] = 20000
    (tmp_path / "run.json").write_text(json.dumps(run))
    out = tmp_path / "grouped.html"
    report.render_report(tmp_path, {}, out)
    page = out.read_text(encoding="utf-8")
    assert "group knockoffs (auto, |r| ≥ 0.5): 6 features in 4 groups" in page
    assert "5 copies per draw" in page
    assert "patience 10 epochs (an epoch: a pass over the training rows or 20,000 rows" in page
    # the recommended filter (VWA-OL here) selected members of G1: the summary names the group
    # with the direction of its members raised together
    assert 'id="summary-groups"' in page
    assert f"G1 (3: {', '.join(names[:3])}; together: higher values go with higher odds" in page


def test_direction_words_tell_an_unused_feature_from_disagreeing_runs():
    from knockoffnet.report.selection_sections import _direction

    res = SimpleNamespace(classes=["B", "M"], meta={"task": "binary"})
    assert _direction(res, "+", 0.4) == "higher values go with higher odds of 'M'"
    assert _direction(res, "-", -0.4) == "higher values go with higher odds of 'B'"
    assert _direction(res, "0", 0.0) == "not used by the network at the chosen λ in any run"
    assert _direction(res, "0", 0.1).startswith("no consistent direction over runs")
    assert "no single direction" in _direction(res, "±", 0.3)


def test_the_method_table_gives_auto_patience_as_the_number_the_cohort_got() -> None:
    """`training.patience: auto` is reported as what it resolved to from the cohort's
    training rows (150 at 320, 20 at 800), with the cap; a number is reported as given."""
    from knockoffnet.report.method_sections import _patience_text

    auto = {"patience": "auto", "max_epochs": "auto", "val_fraction": 0.2}
    assert _patience_text(auto, {"n": 400}) == (
        "150 epochs (auto, from about 320 training rows; at most 1000)"
    )
    assert _patience_text(auto, {"n": 1000}).startswith("20 epochs (auto")
    assert _patience_text({**auto, "patience": 10}, {"n": 400}) == "10 epochs"
    assert _patience_text(auto, {}) == "auto"


def test_the_method_table_gives_the_step_the_cohort_got() -> None:
    """The step size beside the step rule: its default for null, `auto` as what it resolved
    to from the cohort's training rows (0.01 at 320, Adam's 0.003 at 800), a number as
    given; nothing for a rule the table does not know."""
    from knockoffnet.report.method_sections import _step_text

    adam = {"optimizer": "adam", "learning_rate": None, "val_fraction": 0.2}
    assert _step_text(adam, {"n": 400}) == " (step 0.003)"
    assert _step_text({**adam, "learning_rate": "auto"}, {"n": 400}) == " (step 0.01, auto)"
    assert _step_text({**adam, "learning_rate": "auto"}, {"n": 1000}) == " (step 0.003, auto)"
    assert _step_text({**adam, "learning_rate": "auto"}, {}) == " (step auto)"
    assert _step_text({**adam, "learning_rate": 0.02}, {"n": 400}) == " (step 0.02)"
    assert _step_text({"optimizer": "fista", "learning_rate": "auto"}, {"n": 400}) == (
        " (step 0.3)"
    )
    assert _step_text({}, {"n": 400}) == ""


def test_the_method_table_says_when_the_dense_fit_was_coupled() -> None:
    """`training.dense_coupling` in the Training row: `columns` always, `auto` only where it
    coupled this cohort's dense fit (800 training rows up to 20,000, Adam), `none` never."""
    from knockoffnet.report.method_sections import _coupling_text

    auto = {"optimizer": "adam", "dense_coupling": "auto", "val_fraction": 0.2}
    assert "coupled (auto, from about 800 training rows" in _coupling_text(auto, {"n": 1000})
    assert _coupling_text(auto, {"n": 400}) == ""
    assert _coupling_text(auto, {"n": 100_000}) == ""
    assert _coupling_text({**auto, "optimizer": "fista"}, {"n": 1000}) == ""
    assert "coupled by the training rows" in _coupling_text(auto, {})
    assert "coupled (columns" in _coupling_text({**auto, "dense_coupling": "columns"}, {"n": 400})
    assert _coupling_text({**auto, "dense_coupling": "none"}, {"n": 1000}) == ""
    assert _coupling_text({}, {"n": 1000}) == ""
