"""The fit-speed benchmark's arithmetic: ratios are per run (ours over scikit-learn's in the
same run), medians over runs, and the previous configuration's accuracy is read from the
earlier result files by (table, fraction, seed) when a run did not fit it."""

from __future__ import annotations

import json

import pytest

from benchmarks import fit_speed


def _run(table, seed, sk, ours, acc=0.8, previous=None, group="real", fraction=0.1):
    methods = {"sklearn_st": {"fit_seconds": sk, "accuracy": 0.7},
               "recommended": {"fit_seconds": ours, "accuracy": acc, "selection": None}}
    if previous is not None:
        methods["previous"] = previous
    return {"group": group, "table": table, "fraction": fraction, "seed": seed, "n_train": 100,
            "n_labeled": 10, "fallback_accuracy": 0.8, "methods": methods}


def test_ratios_are_per_run_and_the_group_median_is_over_runs():
    runs = [_run("a", 0, sk=1.0, ours=2.0), _run("a", 1, sk=10.0, ours=30.0),
            _run("b", 0, sk=2.0, ours=20.0, acc=0.7)]
    summary = fit_speed.summarize(runs)
    a, b = summary["cells"]
    assert a["recommended_ratio"] == pytest.approx(2.5)  # median of 2x and 3x, not 32/11
    assert b["recommended_ratio"] == pytest.approx(10.0)
    real = summary["groups"]["real"]
    assert real["recommended_ratio_median"] == pytest.approx(3.0)  # runs: 2, 3, 10
    assert real["cells_over_bar"]["recommended"] == ["b@10%"]
    assert real["below_fallback_by_more_than_0.01"]["recommended"] == ["b@10%"]


def test_previous_accuracy_comes_from_the_earlier_files_without_a_fit_time(tmp_path):
    real = tmp_path / "real_tables.json"
    real.write_text(json.dumps({"cells": [{"table": "a", "fraction": 0.1, "runs": [
        {"seed": 0, "methods": {"selftrain_recommended": {"accuracy": 0.9}}},
        {"seed": 1, "methods": {"selftrain_recommended": {"accuracy": 0.6}}}]}]}))
    toy = tmp_path / "accuracy.json"
    toy.write_text(json.dumps({"cells": [{"dataset": "digits", "fraction": 0.1, "methods": {
        "recommended": {"accuracy_per_seed": [0.95, 0.5]}}}]}))
    timed = {"fit_seconds": 4.0, "accuracy": 0.85}
    runs = [_run("a", 0, 1.0, 2.0), _run("a", 1, 1.0, 2.0, previous=timed),
            _run("digits", 0, 1.0, 2.0, group="digits"), _run("a", 1, 1.0, 2.0)]
    fit_speed.fill_previous(runs, real, toy)
    assert runs[0]["methods"]["previous"]["accuracy"] == 0.9
    assert runs[3]["methods"]["previous"]["accuracy"] == 0.6  # by seed
    assert runs[1]["methods"]["previous"] == timed  # measured in the run: kept
    assert runs[2]["methods"]["previous"]["accuracy"] == 0.95  # seed 0 of digits at 10 %
    cell = fit_speed.summarize(runs)["cells"][1]  # sorted: real after digits
    assert cell["accuracy"]["previous"] == pytest.approx((0.9 + 0.85 + 0.6) / 3)
    assert cell["previous_ratio"] == pytest.approx(4.0)  # only the timed run
