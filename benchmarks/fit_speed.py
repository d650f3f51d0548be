"""Fit time of the recommended configuration against scikit-learn's self-training (issue 11).

The bar: a recommended fit costs at most 3x scikit-learn's ``SelfTrainingClassifier`` with
the same base (RandomForest(100)) on digits, and at most 5x (median) on the real tables, at
no loss of accuracy. Per (table, labeled fraction, seed), in one process and one after the
other on the same masking:

- ``sklearn_st``: scikit-learn's SelfTrainingClassifier(RandomForest(100));
- ``recommended``: ``recommended_classifier()`` on digits and the toy tables, and
  ``build_classifier(SelfTrainingSettings(), roles=...)`` on the raw frame of a real table,
  exactly as ``benchmarks/accuracy.py`` and ``benchmarks/real_tables.py`` fit it;
- ``previous``: the same with the guard's folds self-training the base's own 100 trees
  (``GUARD_TREES = 100``, the configuration before the lighter guard), so that the speed-up
  and its accuracy cost are measured on the same fits;
- ``recommended_serial`` (``--serial``): the recommended fit with ``n_jobs=1``, its time
  without the second core;
- the labeled-only fallback the recommended fit keeps when self-training is not adopted
  (``auto``'s choice on the labeled rows), for the safety bar (accuracy only).

The machine is shared: quote the medians of the per-run ratios, never one run's seconds.
Prints a table per cell and the summary, writes JSON (and markdown) to ``benchmarks/results/``.

    python -m benchmarks.fit_speed                                   # digits + 12 tables at 10 %
    python -m benchmarks.fit_speed --datasets digits --fractions 0.05,0.1,0.2 --seeds 3
    python -m benchmarks.fit_speed --datasets none --tables penguins,titanic --seeds 1
    python -m benchmarks.fit_speed merge a.json b.partial.json --out fit_speed.json \\
        --before-real results/real_tables.json --before-toy results/accuracy.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sklearn
from rich.console import Console
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits

from benchmarks.accuracy import _floats, _names
from benchmarks.cells import _sklearn_st, load_split
from benchmarks.real_data import TABLES
from benchmarks.real_tables import MIN_LABELS_PER_CLASS, load_real_split
from selftrain import driver, make_estimator, mask_labels, recommended_classifier
from selftrain.config import SelfTrainingSettings
from selftrain.recommended import build_classifier

RESULTS = Path(__file__).parent / "results"
TOY = ("digits", "wine", "breast_cancer")
PREVIOUS_GUARD_TREES = 100  # the guard's folds before this change: the base's own forest
BARS = {"digits": 3.0, "real": 5.0}  # issue 11: at most 3x on digits, 5x (median) on real
OURS = ("recommended", "previous", "recommended_serial")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if Console().is_terminal else Console(width=160)
    runs, started = [], time.perf_counter()
    partial = args.out.with_suffix(".partial.json")
    with threadpool_limits(args.threads):
        for group, name, fraction, seed, data in _cells(args):
            run = run_one(group, name, fraction, seed, data, serial=args.serial,
                          previous=not args.no_previous)
            runs.append(run)
            console.print(_run_line(run))
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({"runs": runs}, indent=2))
    result = {"protocol": protocol(args), "runs": runs, "summary": summarize(runs),
              "wall_seconds": time.perf_counter() - started}
    print_summary(console, result["summary"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result["summary"]))
    partial.unlink(missing_ok=True)
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def merge(paths: list[Path], out: Path, before: tuple[Path | None, Path | None] = (None, None)
          ) -> int:
    """One result from several runs (processes on a shared machine, partial files too):
    their runs together, summarized again, written as ``out`` (.json and .md). ``before``:
    result files of real_tables.py and accuracy.py for ``fill_previous``."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    runs = [run for part in parts for run in part["runs"]]
    fill_previous(runs, *before)
    result = {"protocols": [part.get("protocol") for part in parts], "runs": runs,
              "summary": summarize(runs), "merged_from": [str(p) for p in paths]}
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result["summary"]))
    print_summary(Console(width=160), result["summary"])
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fit_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=_names(TOY, allow_none=True), default=["digits"],
                        help=f"toy tables (comma-separated) or 'none', from {', '.join(TOY)}")
    parser.add_argument("--digits-fractions", type=_floats, default=[0.05, 0.1, 0.2],
                        help="labeled shares for the toy tables")
    parser.add_argument("--tables", type=_names(TABLES, allow_none=True), default=list(TABLES),
                        help="real tables (comma-separated) or 'none'")
    parser.add_argument("--fractions", type=_floats, default=[0.1],
                        help="labeled shares for the real tables")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..n-1)")
    parser.add_argument("--max-rows", type=int, default=3000, help="as benchmarks.real_tables")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per fit")
    parser.add_argument("--serial", action="store_true",
                        help="also fit the recommended configuration with n_jobs=1")
    parser.add_argument("--no-previous", action="store_true",
                        help="leave out the previous configuration (100-tree guard folds)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fit_speed.json")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


def _cells(args):
    """(group, name, fraction, seed, data) for every run: the toy tables, then the real."""
    for name in args.datasets:
        split = load_split(name)
        for fraction in args.digits_fractions:
            for seed in range(args.seeds):
                yield "digits" if name == "digits" else "toy", name, fraction, seed, split
    for name in args.tables:
        split = load_real_split(name, args.max_rows)
        for fraction in args.fractions:
            for seed in range(args.seeds):
                yield "real", name, fraction, seed, split


def run_one(group: str, name: str, fraction: float, seed: int, data, serial: bool = False,
            previous: bool = True) -> dict:
    """Every method on one masking; skipped when a class keeps fewer than 2 labels."""
    real = group == "real"
    if real:
        X_raw, X_test_raw, Z, Z_test = data.X_train, data.X_test, data.Z_train, data.Z_test
        y_train, y_test = data.y_train, data.y_test
    else:
        Z, Z_test, y_train, y_test = data
        X_raw, X_test_raw = Z, Z_test
    y_masked = mask_labels(y_train, labeled=fraction, random_state=seed)
    labeled = y_masked != -1
    run = {"group": group, "table": name, "fraction": fraction, "seed": seed,
           "n_train": len(y_masked), "n_labeled": int(labeled.sum())}
    if np.unique(y_masked[labeled], return_counts=True)[1].min() < MIN_LABELS_PER_CLASS:
        return {**run, "skipped": f"a class keeps fewer than {MIN_LABELS_PER_CLASS} labels"}

    def ours(**settings):
        if real:
            return build_classifier(SelfTrainingSettings(**settings), random_state=seed,
                                    roles=data.roles)
        return recommended_classifier(random_state=seed).set_params(**settings)

    methods = {"sklearn_st": _timed(_sklearn_st(seed), Z, y_masked, Z_test, y_test)}
    methods["recommended"] = _timed(ours(), X_raw, y_masked, X_test_raw, y_test)
    if previous:
        with guard_trees(PREVIOUS_GUARD_TREES):
            methods["previous"] = _timed(ours(), X_raw, y_masked, X_test_raw, y_test)
    if serial:
        methods["recommended_serial"] = _timed(ours(n_jobs=1), X_raw, y_masked, X_test_raw,
                                               y_test)
    chosen = methods["recommended"].get("chosen_base") or "random_forest"
    fallback = make_estimator(chosen, seed).fit(Z[labeled], y_masked[labeled])
    run["fallback_accuracy"] = float(accuracy_score(y_test, fallback.predict(Z_test)))
    run["methods"] = methods
    return run


@contextmanager
def guard_trees(n: int):
    """The guard's folds self-train an ``n``-tree forest inside the block."""
    before = driver.GUARD_TREES
    driver.GUARD_TREES = n
    try:
        yield
    finally:
        driver.GUARD_TREES = before


def _timed(model, X, y, X_test, y_test) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    seconds = time.perf_counter() - start
    out = {"fit_seconds": seconds,
           "accuracy": float(accuracy_score(y_test, model.predict(X_test)))}
    check = getattr(model, "cv_check_", None)
    if check is not None:
        out["selection"] = check.get("selection")
        out["candidates"] = sorted(check.get("candidates", {}))
        out["n_iter"] = int(model.n_iter_)
    choice = getattr(model, "estimator_choice_", None)
    if choice is not None:
        out["chosen_base"] = choice["chosen"]
    return out


def summarize(runs: list[dict]) -> dict:
    """Per (table, fraction): median seconds and ratio to sklearn, mean accuracies; per
    group: the median ratio and the cells over the bar. A method without fit time in a run
    (``previous`` taken from an earlier result file) counts for accuracy only."""
    done = [r for r in runs if "methods" in r]
    ours = [m for m in OURS if any(m in r["methods"] for r in done)]
    keys = sorted({(r["group"], r["table"], r["fraction"]) for r in done},
                  key=lambda k: (["digits", "toy", "real"].index(k[0]), k[1], k[2]))
    cells = []
    for group, table, fraction in keys:
        here = [r for r in done if (r["group"], r["table"], r["fraction"]) == (group, table,
                                                                                fraction)]
        cell = {"group": group, "table": table, "fraction": fraction,
                "n_labeled": statistics.median(r["n_labeled"] for r in here),
                "seeds": [r["seed"] for r in here],
                "sklearn_st_seconds": statistics.median(
                    r["methods"]["sklearn_st"]["fit_seconds"] for r in here),
                "accuracy": {m: _mean([r["methods"][m]["accuracy"] for r in here
                                       if m in r["methods"]]) for m in ("sklearn_st", *ours)},
                "fallback_accuracy": statistics.fmean(r["fallback_accuracy"] for r in here)}
        for m in ours:
            timed = [r for r in here if "fit_seconds" in r["methods"].get(m, {})]
            cell[f"{m}_seconds"] = _median([r["methods"][m]["fit_seconds"] for r in timed])
            cell[f"{m}_ratio"] = _median([_ratio(r, m) for r in timed])
            cell[f"{m}_selection"] = [r["methods"][m].get("selection") for r in here
                                      if m in r["methods"]]
        cells.append(cell)
    groups = {}
    for group in ("digits", "toy", "real"):
        mine = [c for c in cells if c["group"] == group]
        if not mine:
            continue
        bar = BARS.get(group)
        groups[group] = {
            "bar": bar,
            **{f"{m}_ratio_median": _median([_ratio(r, m) for r in done if r["group"] == group
                                             and "fit_seconds" in r["methods"].get(m, {})])
               for m in ours},
            **{f"{m}_ratio_median_per_fraction": {
                f"{f:g}": _median([_ratio(r, m) for r in done if r["group"] == group
                                   and r["fraction"] == f
                                   and "fit_seconds" in r["methods"].get(m, {})])
                for f in sorted({c["fraction"] for c in mine})} for m in ours},
            "cells_over_bar": {m: [f"{c['table']}@{c['fraction']:.0%}" for c in mine
                                   if bar is not None and c[f"{m}_ratio"] is not None
                                   and c[f"{m}_ratio"] > bar] for m in ours},
            "accuracy_mean_per_fraction": {
                f"{f:g}": {m: _mean([c["accuracy"][m] for c in mine if c["fraction"] == f])
                           for m in ("sklearn_st", *ours)}
                for f in sorted({c["fraction"] for c in mine})},
            "below_fallback_by_more_than_0.01": {
                m: [f"{c['table']}@{c['fraction']:.0%}" for c in mine
                    if c["accuracy"][m] is not None
                    and c["accuracy"][m] < c["fallback_accuracy"] - 0.01] for m in ours},
            "recommended_below_previous_by_more_than_0.01": [
                f"{c['table']}@{c['fraction']:.0%}" for c in mine
                if None not in (c["accuracy"].get("recommended"), c["accuracy"].get("previous"))
                and c["accuracy"]["recommended"] < c["accuracy"]["previous"] - 0.01],
        }
    return {"cells": cells, "groups": groups,
            "skipped": [f"{r['table']}@{r['fraction']:.0%} seed {r['seed']}: {r['skipped']}"
                        for r in runs if "skipped" in r]}


def fill_previous(runs: list[dict], real_tables: Path | None, accuracy: Path | None) -> None:
    """The previous configuration's accuracy, where a run did not fit it, from the result
    files of ``benchmarks/real_tables.py`` and ``benchmarks/accuracy.py`` that measured it
    (same split, masking and seed, deterministic fits): accuracy only, no fit time."""
    before: dict[tuple, float] = {}
    if real_tables is not None:
        for cell in json.loads(real_tables.read_text())["cells"]:
            for run in cell["runs"]:
                method = run.get("methods", {}).get("selftrain_recommended", {})
                if "accuracy" in method:
                    before[cell["table"], cell["fraction"], run["seed"]] = method["accuracy"]
    if accuracy is not None:
        for cell in json.loads(accuracy.read_text())["cells"]:
            for seed, acc in enumerate(cell["methods"]["recommended"]["accuracy_per_seed"]):
                before[cell["dataset"], cell["fraction"], seed] = acc
    for run in runs:
        key = (run["table"], run["fraction"], run["seed"])
        if "methods" in run and "previous" not in run["methods"] and key in before:
            run["methods"]["previous"] = {"accuracy": before[key],
                                          "source": "earlier result file"}


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(run: dict, method: str) -> float:
    return run["methods"][method]["fit_seconds"] / run["methods"]["sklearn_st"]["fit_seconds"]


def protocol(args: argparse.Namespace) -> dict:
    return {"datasets": args.datasets, "digits_fractions": args.digits_fractions,
            "tables": args.tables, "fractions": args.fractions,
            "seeds": list(range(args.seeds)), "max_rows": args.max_rows,
            "threads": args.threads, "guard_trees": driver.GUARD_TREES,
            "previous_guard_trees": PREVIOUS_GUARD_TREES,
            "python": platform.python_version(), "scikit_learn": sklearn.__version__,
            "notes": "per run, in one process: sklearn_st, recommended, previous (and "
                     "recommended_serial), one after the other on the same masking; ratio = "
                     "fit seconds over sklearn_st's of the same run; medians over runs"}


def _run_line(run: dict) -> str:
    head = f"{run['table']} {run['fraction']:.0%} seed {run['seed']}"
    if "skipped" in run:
        return f"{head}: skipped ({run['skipped']})"
    m = run["methods"]
    parts = [f"sk {m['sklearn_st']['fit_seconds']:.2f}s acc {m['sklearn_st']['accuracy']:.3f}"]
    for name in OURS:
        if name in m:
            parts.append(f"{name} {m[name]['fit_seconds']:.2f}s ({_ratio(run, name):.1f}x) "
                         f"acc {m[name]['accuracy']:.3f} {m[name].get('selection')}")
    return f"{head}: " + " | ".join(parts) + f" | fallback {run['fallback_accuracy']:.3f}"


def _seconds(cell: dict, method: str) -> str:
    if cell[f"{method}_seconds"] is None:
        return "–"
    return f"{cell[f'{method}_seconds']:.2f} ({cell[f'{method}_ratio']:.1f}×)"


def _acc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_summary(console: Console, summary: dict) -> None:
    console.print(markdown(summary))


def markdown(summary: dict) -> str:
    cells = summary["cells"]
    ours = [m for m in OURS if cells and f"{m}_ratio" in cells[0]]
    head = ["table", "labeled", "sklearn ST s", *(f"{m} s (×)" for m in ours),
            "acc sklearn ST", *(f"acc {m}" for m in ours), "acc fallback"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        row = [c["table"], f"{c['fraction']:.0%} ({c['n_labeled']:g})",
               f"{c['sklearn_st_seconds']:.2f}",
               *(_seconds(c, m) for m in ours), f"{c['accuracy']['sklearn_st']:.3f}",
               *(_acc(c["accuracy"][m]) for m in ours), f"{c['fallback_accuracy']:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for group, g in summary["groups"].items():
        ratios = ", ".join(f"{m} {g[f'{m}_ratio_median']:.1f}×" for m in ours
                           if g[f"{m}_ratio_median"] is not None)
        accs = "; ".join(f"{f}: " + ", ".join(f"{m} {_acc(v)}" for m, v in per.items())
                         for f, per in g["accuracy_mean_per_fraction"].items())
        lines.append(f"- {group}: median ratio to sklearn ST over runs: {ratios} "
                     f"(bar {g['bar']}×); cells over the bar: {g['cells_over_bar']}; "
                     f"mean accuracy by fraction: {accs}; cells below the fallback by > "
                     f"0.01: {g['below_fallback_by_more_than_0.01']}; recommended below "
                     f"previous by > 0.01: {g['recommended_below_previous_by_more_than_0.01']}")
    if summary["skipped"]:
        lines.append(f"- skipped: {summary['skipped']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["merge"]:
        merging = argparse.ArgumentParser(prog="python -m benchmarks.fit_speed merge")
        merging.add_argument("files", nargs="+", type=Path)
        merging.add_argument("--out", type=Path, required=True)
        merging.add_argument("--before-real", type=Path, default=None,
                             help="real_tables.json of the previous configuration")
        merging.add_argument("--before-toy", type=Path, default=None,
                             help="accuracy.json of the previous configuration")
        a = merging.parse_args(sys.argv[2:])
        sys.exit(merge(a.files, a.out, (a.before_real, a.before_toy)))
    sys.exit(main())
