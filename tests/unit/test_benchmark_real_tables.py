"""The real-tables benchmark on a slice of penguins: every method scores, the JSON holds
the per-seed runs, and a masking that leaves a class one label is skipped, not fatal."""

from __future__ import annotations

import json

import pytest

from benchmarks import real_tables

pytest.importorskip("palmerpenguins")


@pytest.fixture(scope="module")
def penguins_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "real_tables.json"
    argv = ["--tables", "penguins", "--fractions", "0.2", "--seeds", "1", "--max-rows", "200",
            "--out", str(out)]
    assert real_tables.main(argv) == 0
    return out


@pytest.mark.slow  # the module fixture runs the benchmark (~12 s)
def test_every_method_scores_and_the_oracle_beats_chance(penguins_out):
    (cell,) = json.loads(penguins_out.read_text())["cells"]
    assert (cell["table"], cell["fraction"], cell["skipped"]) == ("penguins", 0.2, [])
    assert cell["failed_methods"] == {}
    assert set(cell["methods"]) == set(real_tables.METHODS)
    for method, stats in cell["methods"].items():
        assert 0.0 <= stats["accuracy_mean"] <= 1.0, method
        assert 0.0 <= stats["macro_f1_mean"] <= 1.0, method
        assert stats["fit_seconds_median"] >= 0, method
    n_classes = len(cell["split"]["classes"])
    assert n_classes == 3
    assert cell["methods"]["fully_supervised"]["accuracy_mean"] > 1 / n_classes + 0.1
    assert cell["best"] != "fully_supervised"
    best = cell["methods"]["best_labeled_only"]["accuracy_mean"]
    assert best >= cell["methods"]["labeled_only_rf"]["accuracy_mean"]  # RF is a candidate


@pytest.mark.slow  # the module fixture runs the benchmark (~12 s)
def test_json_round_trips_with_the_per_seed_runs(penguins_out):
    text = penguins_out.read_text()
    result = json.loads(text)
    assert json.loads(json.dumps(result)) == result
    assert {"protocol", "machine", "tables", "cells", "summary"} <= result.keys()
    assert [row["name"] for row in result["tables"]] == ["penguins"]
    (run,) = result["cells"][0]["runs"]
    assert run["seed"] == 0
    assert run["n_labeled"] == sum(run["labeled_per_class"].values()) == 30  # 20 % of 150
    assert run["best_labeled_only_winner"] in run["methods"]["best_labeled_only"]["per_estimator"]
    assert run["cv_check"] is None or set(run["cv_check"]) >= {"z", "fallback"}
    assert not penguins_out.with_suffix(".partial.json").exists()
    summary = result["summary"]
    assert summary["per_fraction"]["0.2"]["n_tables"] == 1
    assert summary["fit_time_ratio_selftrain_over_sklearn_st"]["n_runs"] == 1
    assert "| penguins | 20% (30) |" in penguins_out.with_suffix(".md").read_text()


def test_a_class_left_with_one_label_skips_the_run():
    split = real_tables.load_real_split("penguins", max_rows=100)  # 15 Chinstrap to train
    cell = real_tables.run_cell(split, 0.05, [0])
    assert cell["methods"] == {} and cell["best"] is None
    (reason,) = cell["skipped"]
    assert "'Chinstrap' keeps 1 labeled row" in reason
    assert real_tables.summarize([cell])["per_fraction"]["0.05"]["n_tables"] == 0


def test_unknown_table_is_refused():
    with pytest.raises(SystemExit):
        real_tables.parse_args(["--tables", "iris"])


@pytest.mark.slow  # the module fixture runs the benchmark (~12 s)
def test_merge_summarizes_runs_of_two_processes_together(penguins_out, tmp_path):
    partial = tmp_path / "part.partial.json"  # a run stopped midway: cells only
    partial.write_text(json.dumps({"cells": json.loads(penguins_out.read_text())["cells"]}))
    out = tmp_path / "merged.json"
    assert real_tables.merge([penguins_out, partial], out) == 0
    merged = json.loads(out.read_text())
    assert len(merged["cells"]) == 2 and merged["partial"] == [str(partial)]
    assert merged["summary"]["n_cells_compared"] == 2
    assert merged["summary"]["fit_time_ratio_selftrain_over_sklearn_st"]["n_runs"] == 2
    assert merged["summary"]["selftrain_below_own_fallback_0.01"]["n_cells"] == 2
    assert out.with_suffix(".md").read_text().count("| penguins | 20% (30) |") == 2
