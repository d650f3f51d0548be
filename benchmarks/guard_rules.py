"""Which rule should turn the guard's cross-validated evidence into a decision? (issue 11)

The recommended configuration (``stopping="cv"``, ``base_estimator="auto"``) pools, over
folds of the labeled rows, the rows that self-training fixed (``helped``) and broke
(``harmed``). Every rule below decides from those two counts between the labeled-only
model (round 0, the chosen base) and self-training to the end; this script scores each
rule on the same fits, on the toy tables of ``benchmarks/accuracy.py`` and on the real
tables of ``benchmarks/real_data.py``. A threshold is chosen on the TUNE tables and
confirmed on the CONFIRM tables, which it never saw.

    python -m benchmarks.guard_rules                                  # every table, 3 seeds
    python -m benchmarks.guard_rules --tables wine,penguins --fractions 0.05 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits

from benchmarks.cells import load_split
from benchmarks.real_data import TABLES
from benchmarks.real_tables import load_real_split
from selftrain import mask_labels
from selftrain.config import SelfTrainingSettings
from selftrain.driver import HELP_Z
from selftrain.metrics import mcnemar_z
from selftrain.recommended import build_classifier

RESULTS = Path(__file__).parent / "results"
TOY = ("digits", "wine", "breast_cancer", "synthetic_imbalanced")
REAL = tuple(TABLES)
TUNE = (*TOY, *REAL[: len(REAL) // 2])
CONFIRM = REAL[len(REAL) // 2:]
FRACTIONS = (0.05, 0.1, 0.2)
HELP_THRESHOLDS = (-0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
RULES = ("labeled-only RF", "baseline", "no guard", "harm z>0.5 (before)",
         *(f"help z>{t:g}" for t in HELP_THRESHOLDS), "hindsight")
MAX_SAFE_LOSS = 0.01  # issue 11: never below the labeled-only fallback by more than this


def rule_scores(harmed: int, helped: int, baseline: float, final: float) -> dict[str, float]:
    """Test accuracy each rule reaches, from the guard's counts and the two candidates."""
    return {
        "baseline": baseline,
        "no guard": final,
        "harm z>0.5 (before)": baseline if mcnemar_z(harmed, helped) > 0.5 else final,
        **{f"help z>{t:g}": final if mcnemar_z(helped, harmed) > t else baseline
           for t in HELP_THRESHOLDS},
        "hindsight": max(baseline, final),
    }


def run_seed(name: str, split, fraction: float, seed: int, base: str = "auto") -> dict:
    """One guarded fit (plus one unguarded fit when the guard kept round 0)."""
    X_train, X_test, y_train, y_test, roles = split
    y_masked = mask_labels(y_train, labeled=fraction, random_state=seed)
    scores: list[float] = []

    def fit(stopping):
        settings = SelfTrainingSettings(stopping=stopping, base_estimator=base)
        clf = build_classifier(settings, seed, roles)
        clf.set_params(callback=lambda _s, model, _r: scores.append(
            accuracy_score(y_test, model.predict(X_test))))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X_train, y_masked)
        return clf, time.perf_counter() - started

    guarded, seconds = fit("cv")
    baseline = scores[0]
    check = guarded.cv_check_ or {"harmed_rows": 0, "helped_rows": 0, "fallback": False}
    if check["fallback"]:
        scores.clear()
        fit(None)
    final = scores[-1]
    rf = _labeled_only_rf(split, y_masked, y_masked != -1, seed, guarded)
    return {"harmed_rows": check["harmed_rows"], "helped_rows": check["helped_rows"],
            "checked": guarded.cv_check_ is not None, "fit_seconds": seconds,
            "chosen": (guarded.estimator_choice_ or {}).get("chosen"),
            "labeled-only RF": rf,
            **rule_scores(check["harmed_rows"], check["helped_rows"], baseline, final)}


def _labeled_only_rf(split, y_masked, labeled, seed: int, fitted) -> float:
    """RandomForest(100) on the labeled rows, behind the same fitted preprocessor."""
    X_train, X_test, _, y_test, roles = split
    forest = RandomForestClassifier(n_estimators=100, random_state=seed)
    if roles is None:
        forest.fit(X_train[labeled], y_masked[labeled])
        return accuracy_score(y_test, forest.predict(X_test))
    pre = fitted.estimator_.steps[0][1]  # fitted on every training row, as the peers' is
    forest.fit(pre.transform(X_train[labeled]), y_masked[labeled].astype(y_test.dtype))
    return accuracy_score(y_test, forest.predict(pre.transform(X_test)))


def load(name: str, max_rows: int):
    """(X_train, X_test, y_train, y_test, roles): arrays for toy tables, raw frames and
    their roles for real ones."""
    if name in TOY:
        X_train, X_test, y_train, y_test = load_split(name)
        return X_train, X_test, y_train, y_test, None
    real = load_real_split(name, max_rows)
    return real.X_train, real.X_test, real.y_train, real.y_test, real.roles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard_rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TOY + REAL))
    parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--base", default="auto", help="base estimator (default: auto)")
    parser.add_argument("--out", type=Path, default=RESULTS / "guard_rules.json")
    args = parser.parse_args(argv)
    console = Console(width=None if Console().is_terminal else 160)
    cells, partial = [], args.out.with_suffix(".partial.json")
    for name in args.tables.split(","):
        split = load(name, args.max_rows)
        for fraction in map(float, args.fractions.split(",")):
            runs = []
            for seed in range(args.seeds):
                with threadpool_limits(1):
                    runs.append(run_seed(name, split, fraction, seed, args.base))
                console.print(f"{name} {fraction:.0%} seed {seed}: "
                              + ", ".join(f"{r} {runs[-1][r]:.3f}" for r in RULES)
                              + f", chose {runs[-1]['chosen']}, {runs[-1]['fit_seconds']:.1f} s")
            cells.append({"table": name, "fraction": fraction, "seeds": args.seeds,
                          "mean": {r: statistics.fmean(x[r] for x in runs) for r in RULES},
                          "per_seed": runs})
            partial.write_text(json.dumps({"cells": cells}, indent=2) + "\n")
    result = {"help_z": HELP_Z, "base_estimator": args.base, "tune": list(TUNE),
              "confirm": list(CONFIRM), "cells": cells,
              "summary": {group: summarize([c for c in cells if c["table"] in tables])
                          for group, tables in (("tune", TUNE), ("confirm", CONFIRM),
                                                ("all", TOY + REAL))}}
    print_result(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    console.print(f"wrote {args.out}")
    return 0


def summarize(cells: list[dict]) -> dict:
    """Per rule: mean gain over the labeled-only fallback and over the labeled-only forest,
    and the cells where it falls below the fallback by more than ``MAX_SAFE_LOSS``."""
    if not cells:
        return {}
    out = {}
    for rule in RULES:
        gains = [c["mean"][rule] - c["mean"]["baseline"] for c in cells]
        out[rule] = {
            "mean_accuracy": statistics.fmean(c["mean"][rule] for c in cells),
            "mean_gain_over_fallback": statistics.fmean(gains),
            "mean_gain_over_rf": statistics.fmean(c["mean"][rule] - c["mean"]["labeled-only RF"]
                                                  for c in cells),
            "unsafe_cells": [f"{c['table']} {c['fraction']:.0%}" for c, g in zip(cells, gains,
                                                                                   strict=True)
                             if g < -MAX_SAFE_LOSS],
        }
    return out


def print_result(console: Console, result: dict) -> None:
    table = Table(title="Test accuracy per rule (mean over seeds)")
    for col in ("table", "labeled", *RULES):
        table.add_column(col, justify="left" if col == "table" else "right")
    for cell in result["cells"]:
        table.add_row(cell["table"], f"{cell['fraction']:.0%}",
                      *(f"{cell['mean'][r]:.3f}" for r in RULES))
    console.print(table)
    for group, summary in result["summary"].items():
        if not summary:
            continue
        console.print(f"[bold]{group}[/bold]: " + "; ".join(
            f"{rule} {s['mean_gain_over_fallback']:+.4f} (unsafe {len(s['unsafe_cells'])})"
            for rule, s in summary.items()))


if __name__ == "__main__":
    raise SystemExit(main())
