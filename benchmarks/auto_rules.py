"""Which rule should ``base_estimator="auto"`` use to pick the labeled-only model? (issue 11)

With a few dozen labels, the registry entry with the best cross-validated accuracy is
often the luckiest one, not the best: the plain argmax lost 0.005 to the forest on the
real tables (benchmarks/results/real_tables.json). This script collects, on the same
maskings as ``benchmarks/real_tables.py``, every registry entry's out-of-fold hits on the
labeled rows (3 folds, ``--repeats`` shuffles) and its test accuracy after a fit on the
labeled rows; then it scores candidate rules offline on those numbers:

- ``argmax``: the best mean out-of-fold accuracy (the rule before);
- ``forest unless z>t``: the forest, unless an entry beats it on the out-of-fold rows with
  a corrected McNemar z above ``t`` (the burden of proof on the challenger);
- ``hindsight``: the best test accuracy (a bound).

Thresholds are chosen on the TUNE tables and confirmed on the CONFIRM tables.

    python -m benchmarks.auto_rules --seeds 3                 # collect and score
    python -m benchmarks.auto_rules --from-json benchmarks/results/auto_rules.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from benchmarks.cells import load_split
from benchmarks.guard_rules import CONFIRM, TOY, TUNE
from benchmarks.real_data import TABLES
from benchmarks.real_tables import FRACTIONS, MIN_LABELS_PER_CLASS, load_real_split
from selftrain import make_estimator, mask_labels
from selftrain.estimators import ESTIMATOR_NAMES
from selftrain.metrics import mcnemar_z

RESULTS = Path(__file__).parent / "results"
Z_THRESHOLDS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def collect(name: str, fraction: float, seed: int, split, repeats: int) -> dict | None:
    """Out-of-fold hits and test accuracy of every registry entry on one masking."""
    Z_train, Z_test, y_train, y_test = split
    y_masked = mask_labels(y_train, labeled=fraction, random_state=seed)
    labeled = y_masked != -1
    counts = np.bincount(y_masked[labeled])
    if counts[counts > 0].min() < MIN_LABELS_PER_CLASS or (counts == 0).any():
        return None
    Zl, yl = Z_train[labeled], y_masked[labeled]
    out = {"table": name, "fraction": fraction, "seed": seed, "n_labeled": int(labeled.sum()),
           "oof_hits": {}, "test_accuracy": {}}
    for est_name in ESTIMATOR_NAMES:
        est = make_estimator(est_name, seed)
        hits = []
        for r in range(repeats):
            folds = StratifiedKFold(min(3, int(counts.min())), shuffle=True,
                                    random_state=seed * 100 + r)
            try:
                pred = cross_val_predict(clone(est), Zl, yl, cv=folds)
                hits.append((pred == yl).astype(int).tolist())
            except ValueError:
                hits.append(None)
        out["oof_hits"][est_name] = hits
        try:
            out["test_accuracy"][est_name] = float((clone(est).fit(Zl, yl).predict(Z_test)
                                                    == y_test).mean())
        except ValueError:  # e.g. the SVC's calibration with 2 labels in a class
            out["test_accuracy"][est_name] = None
            out["oof_hits"][est_name] = [None] * repeats
    return out


def choose(run: dict, rule: str, repeats: int) -> str:
    """The entry ``rule`` picks from the out-of-fold hits of the first ``repeats`` shuffles."""
    hits = {k: np.concatenate(v[:repeats]) for k, v in run["oof_hits"].items()
            if all(h is not None for h in v[:repeats])}
    if rule == "hindsight":
        tested = {k: v for k, v in run["test_accuracy"].items() if v is not None}
        return max(tested, key=tested.get)
    if rule == "forest":
        return "random_forest"
    if rule == "argmax":
        return max(hits, key=lambda k: (hits[k].mean(), -ESTIMATOR_NAMES.index(k)))
    t = float(rule.split(">")[1])
    rf = hits["random_forest"]
    zs = {k: mcnemar_z(int((h & ~rf.astype(bool)).sum()), int((~h.astype(bool) & rf).sum()))
          for k, h in ((k, v.astype(bool)) for k, v in hits.items()) if k != "random_forest"}
    best = max(zs, key=zs.get, default=None)
    return best if best is not None and zs[best] > t else "random_forest"


RULES = ("forest", "argmax", *(f"forest unless z>{t:g}" for t in Z_THRESHOLDS), "hindsight")


def score(runs: list[dict], repeats: int) -> dict:
    """Per group (tune/confirm/all) and rule: mean over cells of the mean test accuracy,
    and the cells more than 0.01 below the forest."""
    cells: dict[tuple, list] = {}
    for run in runs:
        cells.setdefault((run["table"], run["fraction"]), []).append(run)
    summary = {}
    for group, tables in (("tune", TUNE), ("confirm", CONFIRM), ("all", None)):
        here = {k: v for k, v in cells.items() if tables is None or k[0] in tables}
        if not here:
            continue
        summary[group] = {}
        for rule in RULES:
            means = {k: statistics.fmean(r["test_accuracy"][choose(r, rule, repeats)] for r in v)
                     for k, v in here.items()}
            forest = {k: statistics.fmean(r["test_accuracy"]["random_forest"] for r in v)
                      for k, v in here.items()}
            per_fraction = {f"{f:g}": statistics.fmean(m for k, m in means.items() if k[1] == f)
                            for f in sorted({k[1] for k in here})}
            summary[group][rule] = {
                "mean": statistics.fmean(means.values()), "per_fraction": per_fraction,
                "cells_below_forest_0.01": [f"{k[0]} {k[1]:g}" for k in means
                                            if means[k] < forest[k] - 0.01]}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auto_rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join((*TOY, *TABLES)))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=3000)
    parser.add_argument("--from-json", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "auto_rules.json")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        runs = json.loads(args.from_json.read_text())["runs"]
    else:
        runs = []
        started = time.perf_counter()
        for name in args.tables.split(","):
            if name in TOY:
                X_train, X_test, y_train, y_test = load_split(name)
                split = (X_train, X_test, y_train, y_test)
            else:
                real = load_real_split(name, args.max_rows)
                split = (real.Z_train, real.Z_test, real.y_train, real.y_test)
            for fraction in FRACTIONS:
                for seed in range(args.seeds):
                    with threadpool_limits(1), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        run = collect(name, fraction, seed, split, args.repeats)
                    if run is not None:
                        runs.append(run)
            print(f"{name}: done at {time.perf_counter() - started:.0f} s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"repeats": args.repeats, "runs": runs}) + "\n")
    for repeats in range(1, args.repeats + 1):
        print(f"== out-of-fold hits of {repeats} shuffle(s) of 3 folds")
        for group, rules in score(runs, repeats).items():
            print(f"  [{group}]")
            for rule, s in rules.items():
                fr = " ".join(f"{f}:{v:.4f}" for f, v in s["per_fraction"].items())
                print(f"    {rule:24s} {s['mean']:.4f}  ({fr})  below forest by >0.01: "
                      f"{len(s['cells_below_forest_0.01'])} {s['cells_below_forest_0.01']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
