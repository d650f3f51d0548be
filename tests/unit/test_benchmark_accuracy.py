"""The accuracy benchmark's core on a tiny slice: structure and sane numbers."""

from __future__ import annotations

import json

import pytest

from benchmarks import accuracy
from benchmarks.cells import METHODS


@pytest.fixture(scope="module")
def wine_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "accuracy.json"
    argv = ["--datasets", "wine", "--fractions", "0.2", "--seeds", "1", "--extras", "none",
            "--out", str(out)]
    assert accuracy.main(argv) == 0
    return out


def test_json_has_one_cell_with_every_method(wine_result):
    result = json.loads(wine_result.read_text())
    assert result["protocol"]["datasets"] == ["wine"]
    (cell,) = result["cells"]
    assert (cell["dataset"], cell["fraction"]) == ("wine", 0.2)
    assert set(cell["methods"]) == set(METHODS)
    assert set(cell["verdict"]) == {"recommended_ge_sklearn_st", "recommended_not_below_baseline"}


def test_scores_are_shares_and_gap_is_anchored(wine_result):
    (cell,) = json.loads(wine_result.read_text())["cells"]
    for stats in cell["methods"].values():
        for key in ("accuracy_mean", "macro_f1_mean", "accuracy_std"):
            assert 0.0 <= stats[key] <= 1.0, key
        assert stats["fit_seconds_median"] >= 0
    assert cell["methods"]["baseline"]["gap_closed"] == 0.0
    oracle = cell["methods"]["oracle"]
    assert oracle["gap_closed"] in (0.0, 1.0)  # 0.0 only when the gap is empty


def test_bars_are_judged_and_digits_bar_is_not_applicable(wine_result):
    result = json.loads(wine_result.read_text())
    passed = [bar["passed"] for bar in result["bars"].values()]
    assert passed[:2] == [bool(p) for p in passed[:2]]
    assert passed[2] is None  # digits at 10% was not run
    markdown = wine_result.with_suffix(".md").read_text()
    assert markdown.count("| wine |") == 1


def test_unknown_dataset_is_refused():
    with pytest.raises(SystemExit):
        accuracy.parse_args(["--datasets", "mnist"])
