"""The recommended configuration on one large synthetic table: time and peak memory (issue 11).

Issue 11 asks that the recommended configuration run on a 1,000,000 x 64 table within the
machine's 24 GiB, with one configuration for every size: above ``POOL_MAX_ROWS`` unlabeled
rows self-training works on a seeded sample of the pool (``selftrain/pool.py``), and above
``TEACHER_MAX_ROWS`` rows (of that sample and the labeled rows) the teacher turns itself off,
each with one warning. This script fits ``recommended_classifier()`` on
``make_classification(rows, 64)`` with ``--labeled`` of the labels kept and reports the fit
time, the process's peak resident memory, the base ``auto`` chose, the guard's verdict and
the accuracy on a held-out quarter, next to a forest fitted on the labeled rows alone (the
same split); JSON goes to ``benchmarks/results/``, and a line per round of every run (the
guard's folds too) to the standard output.

    python -m benchmarks.large_table --rows 1000000 --n-jobs 1   # the issue's size
    python -m benchmarks.large_table --rows 20000                # a smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from selftrain import mask_labels, recommended_classifier
from selftrain.pool import POOL_MAX_ROWS
from selftrain.teacher import TEACHER_MAX_ROWS

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--labeled", type=float, default=0.01, help="share of labels kept")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="the guard folds' joblib workers (default: the configuration's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or RESULTS / f"large_table_{args.rows}.json"
    X, y = make_classification(n_samples=args.rows, n_features=args.features,
                               n_informative=16, n_classes=4, random_state=0)
    X = X.astype(np.float32)  # half the memory of float64; the forest works in float32
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    y_masked = mask_labels(y_train, labeled=args.labeled, random_state=0)
    clf = recommended_classifier(random_state=0)
    if args.n_jobs is not None:  # results do not depend on it (seeded folds)
        clf.set_params(n_jobs=args.n_jobs)
    started = time.perf_counter()

    def progress(state, _model, record) -> None:  # the final run's rounds, for a long run's log
        print(f"{time.perf_counter() - started:8.0f} s  round {record['round']}: "
              f"{record['n_labeled']} labeled, {record['n_added']} added", flush=True)

    clf.set_params(callback=progress)
    _log_every_round(started)
    print(f"{args.rows} x {args.features}: {int((y_masked != -1).sum())} labeled of "
          f"{len(y_masked)} training rows; fitting", flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X_train, y_masked)
    seconds = time.perf_counter() - started
    check = clf.cv_check_ or {}
    print(f"fit: {seconds:.0f} s; the labeled-only forest next", flush=True)
    labeled = y_masked != -1
    forest = RandomForestClassifier(n_estimators=100, random_state=0)
    forest_started = time.perf_counter()
    forest.fit(X_train[labeled], y_masked[labeled])
    forest_seconds = time.perf_counter() - forest_started
    result = {
        "rows": args.rows, "features": args.features, "labeled_share": args.labeled,
        "n_labeled": int((y_masked != -1).sum()), "fit_seconds": seconds,
        # ru_maxrss: KiB on Linux; the largest of this process and its finished children
        "peak_rss_gib": max(resource.getrusage(who).ru_maxrss
                            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 2**20,
        "accuracy": float((clf.predict(X_test) == y_test).mean()),
        # the peer on the same split: a forest on the labeled rows alone
        "labeled_only_forest_accuracy": float((forest.predict(X_test) == y_test).mean()),
        "labeled_only_forest_seconds": forest_seconds,
        "n_pseudo_labeled": int((clf.labeled_iter_ > 0).sum()),
        "termination": clf.termination_condition_,
        "chosen_base": (clf.estimator_choice_ or {}).get("chosen"),
        "guard": {k: check.get(k) for k in ("fallback", "selection", "z_help")},
        "n_iter": int(clf.n_iter_),
        "pool_max_rows": POOL_MAX_ROWS, "teacher_max_rows": TEACHER_MAX_ROWS,
        "warnings": sorted({str(w.message)[:160] for w in caught
                            if issubclass(w.category, UserWarning)}),
        "python": sys.version.split()[0],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _log_every_round(started: float) -> None:
    """One log line per round of every run (the guard's folds too), so that a run stopped
    before its end says how far it got. Logging only: the rounds are the library's."""
    from selftrain import driver

    run_round = driver.run_round

    def logged(state, X, *args, **kwargs):
        result = run_round(state, X, *args, **kwargs)
        print(f"{time.perf_counter() - started:8.0f} s    a round on {int(state.labeled.sum())} "
              f"rows of {X.shape[0]} ({int(result.state.labeled.sum())} after)", flush=True)
        return result

    driver.run_round = logged


if __name__ == "__main__":
    raise SystemExit(main())
