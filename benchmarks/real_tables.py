"""Self-training on real tables as their owner has them (text categories, missing cells,
dates, skewed labels): selftrain's recommended configuration against its peers.

Per table of ``benchmarks/real_data.py``: the fixed stratified 25 % test split of
``benchmarks/accuracy.py`` (seed 0), then per labeled fraction and seed one stratified
masking of the training labels, on which every method is fitted:

- ``labeled_only_rf``: RandomForest(100) on the labeled rows only;
- ``best_labeled_only``: every registry estimator on the labeled rows, the best by test
  accuracy in hindsight (the winner is recorded);
- ``sklearn_self_training``: scikit-learn's SelfTrainingClassifier(RandomForest(100));
- ``label_spreading``: scikit-learn's LabelSpreading (kNN kernel) on standardized features;
- ``selftrain_recommended``: ``build_classifier(SelfTrainingSettings(), roles=...)`` on the
  raw frame, with its own preprocessing;
- ``fully_supervised``: RandomForest(100) on every training label.

All but ``selftrain_recommended`` share one preprocessing: ``make_preprocessor(roles)``
fitted on all training rows (labeled and unlabeled). Prints a table per (table,
fraction) and a summary, writes JSON and README-ready markdown, and saves the runs
finished so far to ``<out>.partial.json`` as it goes (removed once the result is written).

    python -m benchmarks.real_tables --tables penguins,titanic --fractions 0.1 --seeds 1
    python -m benchmarks.real_tables --seeds 3 --max-rows 3000     # every table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from benchmarks.accuracy import _floats, _method_stats, _names
from benchmarks.cells import SPLIT_SEED, TEST_SIZE, _label_spreading, _sklearn_st
from benchmarks.real_data import TABLES, describe_tables, load_table
from benchmarks.report import _pm
from selftrain import make_estimator, mask_labels
from selftrain.columns import ColumnRoles, infer_roles, make_preprocessor
from selftrain.config import SelfTrainingSettings
from selftrain.estimators import ESTIMATOR_NAMES
from selftrain.recommended import build_classifier

RESULTS = Path(__file__).parent / "results"
FRACTIONS = (0.05, 0.1, 0.2)
MAX_ROWS = 3000
MIN_LABELS_PER_CLASS = 2  # fewer and a class cannot even be cross-checked: skip the run
LOSS_MARGINS = (0.01, 0.02)
METHODS = ("labeled_only_rf", "best_labeled_only", "sklearn_self_training", "label_spreading",
           "selftrain_recommended", "selftrain_forest", "fully_supervised")
ORACLE = "fully_supervised"  # an upper bound, not a competitor: never bolded as best
LABELS = {
    "labeled_only_rf": "labeled-only RF",
    "best_labeled_only": "best labeled-only (hindsight)",
    "sklearn_self_training": "sklearn SelfTraining (RF)",
    "label_spreading": "sklearn LabelSpreading",
    "selftrain_recommended": "selftrain recommended",
    "selftrain_forest": "selftrain, base_estimator=random_forest",
    "fully_supervised": "fully supervised RF",
}


@dataclass
class RealSplit:
    """One table's fixed train/test split: raw frames, encoded labels, and the shared
    preprocessing (fitted on every training row) applied to both sides."""

    name: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    roles: ColumnRoles
    Z_train: np.ndarray
    Z_test: np.ndarray

    def describe(self) -> dict:
        return {
            "rows": len(self.X_train) + len(self.X_test),
            "n_train": len(self.X_train),
            "n_test": len(self.X_test),
            "label": TABLES[self.name].label,
            "classes": self.classes,
            "train_class_counts": np.bincount(self.y_train, minlength=len(self.classes)).tolist(),
            "roles": self.roles.report(),
            "encoded_features": int(self.Z_train.shape[1]),
        }


def main(argv: list[str] | None = None) -> int:
    """Run every table x fraction x seed, print the tables and summary, write the files."""
    args = parse_args(argv)
    if args.skip_forest_variant:  # the machine is shared: the variant doubles selftrain's time
        global METHODS
        METHODS = tuple(m for m in METHODS if m != "selftrain_forest")
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the table
        console = Console(width=140)
    started, code = time.perf_counter(), code_version()  # the library as this run loaded it
    with threadpool_limits(args.threads):  # OpenMP on 2 shared cores: HGB 7 s instead of 0.3
        cells = run_benchmark(args.tables, args.fractions, range(args.seeds), args.max_rows,
                              console=console, partial_out=args.out.with_suffix(".partial.json"))
    result = build_result(cells, args, wall_seconds=time.perf_counter() - started)
    result["protocol"]["code"] = code
    print_cells(console, result)
    print_summary(console, result["summary"])
    write_results(result, args.out)
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)  # the result holds it all
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def merge(paths: list[Path], out: Path) -> int:
    """One result from runs over disjoint tables (e.g. two processes on a shared machine):
    their cells together, summarized again, written as ``out`` (.json and .md)."""
    global METHODS
    parts = [json.loads(Path(p).read_text()) for p in paths]
    cells = [cell for part in parts for cell in part["cells"]]
    present = {m for cell in cells for m in cell["methods"]}
    METHODS = tuple(m for m in METHODS if m in present)
    names = [c["table"] for c in cells]
    names = sorted(set(names), key=names.index)
    seeds = max(len(c["runs"]) for c in cells)
    base = next((part for part in parts if "protocol" in part), None)  # else all partial
    result = {"protocol": base["protocol"] if base else protocol(
                  parse_args(["--seeds", str(seeds), "--tables", ",".join(names)])),
              "machine": machine_info(), "cells": cells, "summary": summarize(cells),
              "tables": [row for row in describe_tables() if row["name"] in names],
              "wall_seconds": max(part.get("wall_seconds", 0) for part in parts),
              "wall_seconds_per_part": [part.get("wall_seconds") for part in parts],
              "merged_from": [str(p) for p in paths],
              "partial": [str(p) for p, part in zip(paths, parts, strict=True)
                          if "summary" not in part]}
    result["protocol"]["tables"] = names
    write_results(result, out)
    print_summary(Console(width=140), result["summary"])
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=_names(TABLES), default=list(TABLES),
                        help=f"comma-separated, from {', '.join(TABLES)}")
    parser.add_argument("--fractions", type=_floats, default=list(FRACTIONS),
                        help="comma-separated labeled shares of the training split")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..n-1)")
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS,
                        help="larger tables are a stratified sample of this many rows")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads per fit (1: no oversubscription on shared cores)")
    parser.add_argument("--skip-forest-variant", action="store_true",
                        help="leave out selftrain with base_estimator=random_forest")
    parser.add_argument("--out", type=Path, default=RESULTS / "real_tables.json",
                        help="JSON path; the markdown goes next to it (.md)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.max_rows < 20:
        parser.error(f"--max-rows must be >= 20, got {args.max_rows}")
    return args


# -- one table, one masking ------------------------------------------------------------------


def load_real_split(name: str, max_rows: int = MAX_ROWS) -> RealSplit:
    """Table ``name`` (at most ``max_rows``), split as ``benchmarks.cells.load_split`` does,
    with roles inferred on the training rows and the shared preprocessor fitted on them."""
    frame = load_table(name, max_rows=max_rows)
    y_raw = frame.pop(TABLES[name].label).to_numpy()
    classes, y = np.unique(y_raw, return_inverse=True)
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    X_train, X_test = X_train.reset_index(drop=True), X_test.reset_index(drop=True)
    roles = infer_roles(X_train)
    preprocessor = make_preprocessor(roles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z_train = np.asarray(preprocessor.fit_transform(X_train), dtype=np.float64)
        Z_test = np.asarray(preprocessor.transform(X_test), dtype=np.float64)
    return RealSplit(name, X_train, X_test, y_train, y_test, [str(c) for c in classes], roles,
                     Z_train, Z_test)


def run_seed(split: RealSplit, fraction: float, seed: int, oracle: dict | None = None) -> dict:
    """Every method on one stratified masking of the training labels. Skipped (with the
    reason) when a class keeps fewer than 2 labels; a method that raises records its error.
    ``oracle`` (the fully supervised score of this seed) is reused across fractions."""
    y_masked = mask_labels(split.y_train, labeled=fraction, random_state=seed)
    labeled = y_masked != -1
    counts = np.bincount(y_masked[labeled], minlength=len(split.classes))
    run = {"seed": seed, "n_labeled": int(labeled.sum()),
           "labeled_per_class": dict(zip(split.classes, counts.tolist(), strict=True))}
    if counts.min() < MIN_LABELS_PER_CLASS:
        rare = split.classes[int(counts.argmin())]
        total = int((split.y_train == counts.argmin()).sum())
        run["skipped"] = (f"class {rare!r} keeps {counts.min()} labeled row(s) of {total} "
                          f"at {fraction:.0%}; every method needs >= {MIN_LABELS_PER_CLASS}")
        return run
    Zl, yl = split.Z_train[labeled], y_masked[labeled]
    test = (split.Z_test, split.y_test)
    candidates = {name: _score(make_estimator(name, seed), Zl, yl, *test)
                  for name in ESTIMATOR_NAMES}
    methods = {"labeled_only_rf": candidates["random_forest"],  # the same fit, not refitted
               "best_labeled_only": _best_of(candidates)}
    methods["sklearn_self_training"] = _score(_sklearn_st(seed), split.Z_train, y_masked, *test)
    methods["label_spreading"] = _score(_label_spreading(seed), split.Z_train, y_masked, *test)
    recommended = build_classifier(SelfTrainingSettings(), random_state=seed, roles=split.roles)
    methods["selftrain_recommended"] = _score(recommended, split.X_train, y_masked,
                                              split.X_test, split.y_test)
    if "selftrain_forest" in METHODS:
        forest = build_classifier(SelfTrainingSettings(base_estimator="random_forest"),
                                  random_state=seed, roles=split.roles)
        methods["selftrain_forest"] = _score(forest, split.X_train, y_masked, split.X_test,
                                             split.y_test)
        methods["selftrain_forest"].pop("cv_check", None)
    methods["fully_supervised"] = oracle or _score(make_estimator("random_forest", seed),
                                                   split.Z_train, split.y_train, *test)
    run["methods"] = methods
    run["best_labeled_only_winner"] = methods["best_labeled_only"].get("winner")
    run["cv_check"] = methods["selftrain_recommended"].pop("cv_check", None)
    run["selftrain_auto_fallback"] = methods["selftrain_recommended"].get("auto_fallback")
    # the labeled-only model the recommended fit keeps when self-training is not adopted
    # (the same entry on the shared preprocessing)
    run["fallback_accuracy"] = candidates.get(run["selftrain_auto_fallback"] or "random_forest",
                                              {}).get("accuracy")
    return run


def _score(model, X_fit, y_fit, X_test, y_test) -> dict:
    """Fit and score one model; the error text instead when it raises."""
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and guard chatter
            model.fit(X_fit, y_fit)
            seconds = time.perf_counter() - start
            pred = model.predict(X_test)
    except Exception as exc:  # one method's failure must not end the run
        return {"error": f"{type(exc).__name__}: {exc}"}
    out = {
        "accuracy": float(accuracy_score(y_test, pred)),
        "macro_f1": float(f1_score(y_test, pred, average="macro", zero_division=0)),
        "fit_seconds": seconds,
    }
    if hasattr(model, "cv_check_"):  # selftrain: the guard's verdict, and how far it went
        check = model.cv_check_
        out["cv_check"] = None if check is None else {
            k: check[k] for k in ("z", "z_help", "fallback", "checked", "baseline_accuracy",
                                  "final_accuracy", "harmed_rows", "helped_rows", "selection",
                                  "candidates") if k in check}
        choice = getattr(model, "estimator_choice_", None)  # base_estimator="auto"
        if choice is not None:  # the labeled-only model the guard compares against and keeps
            out["auto_fallback"], out["auto_cv_accuracy"] = choice["chosen"], choice["cv_accuracy"]
            out["self_trainer"] = choice.get("self_trainer")
        if check is not None:  # the keys benchmarks.accuracy._method_stats aggregates
            out["guard_z"], out["guard_fallback"] = check["z"], bool(check["fallback"])
        out["n_iter"], out["best_iter"] = int(model.n_iter_), int(model.best_iter_)
    return out


def _best_of(candidates: dict[str, dict]) -> dict:
    """The candidate with the best test accuracy (first in registry order on a tie)."""
    scored = {name: c for name, c in candidates.items() if "error" not in c}
    per_estimator = {name: c.get("accuracy", c.get("error")) for name, c in candidates.items()}
    if not scored:
        return {"error": "every estimator failed", "per_estimator": per_estimator}
    winner = max(scored, key=lambda name: scored[name]["accuracy"])
    return {**scored[winner], "winner": winner, "per_estimator": per_estimator,
            "fit_seconds_all": sum(c["fit_seconds"] for c in scored.values())}


# -- aggregation -----------------------------------------------------------------------------


def run_cell(split: RealSplit, fraction: float, seeds, oracles: dict[int, dict] | None = None,
             on_run=None) -> dict:
    """One (table, fraction) over ``seeds``: per-seed runs and their summary.
    ``oracles`` caches the fully supervised score per seed; ``on_run(run)`` after each."""
    oracles = {} if oracles is None else oracles
    runs = []
    for seed in seeds:
        run = run_seed(split, fraction, seed, oracles.get(seed))
        if "methods" in run and "error" not in run["methods"][ORACLE]:
            oracles[seed] = run["methods"][ORACLE]
        runs.append(run)
        if on_run is not None:
            on_run(run)
    return summarize_cell(split, fraction, runs)


def summarize_cell(split: RealSplit, fraction: float, runs: list[dict]) -> dict:
    """Mean, std and per-seed scores of every method over the runs that were not skipped."""
    done = [run for run in runs if "methods" in run]
    stats, failed = {}, {}
    for method in METHODS:
        ok = [run["methods"][method] for run in done if "error" not in run["methods"][method]]
        errors = [f"seed {run['seed']}: {run['methods'][method]['error']}"
                  for run in done if "error" in run["methods"][method]]
        if errors:
            failed[method] = errors
        if ok:
            stats[method] = {**_method_stats(ok), "n_seeds": len(ok)}
    contenders = {m: s["accuracy_mean"] for m, s in stats.items() if m != ORACLE}
    return {
        "table": split.name,
        "fraction": fraction,
        "n_train": len(split.X_train),
        "n_labeled": statistics.median(run["n_labeled"] for run in runs),
        "methods": stats,
        "best": max(contenders, key=contenders.get) if contenders else None,
        "best_labeled_only_winners": dict(Counter(
            run["best_labeled_only_winner"] for run in done if run["best_labeled_only_winner"])),
        "selftrain_auto_fallbacks": dict(Counter(
            run["selftrain_auto_fallback"] for run in done if run.get("selftrain_auto_fallback"))),
        "skipped": [f"seed {run['seed']}: {run['skipped']}" for run in runs if "skipped" in run],
        "failed_methods": failed,
        "runs": runs,
    }


def run_benchmark(tables, fractions, seeds, max_rows: int = MAX_ROWS,
                  console: Console | None = None, partial_out: Path | None = None) -> list[dict]:
    """Every table x fraction x seed; the cells. ``partial_out`` is rewritten after every
    seed with the cells and runs finished so far, so a run killed midway keeps them."""
    seeds, cells, splits = list(seeds), [], {}
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  disable=console is None, transient=True) as progress:
        task = progress.add_task("runs", total=len(tables) * len(fractions) * len(seeds))
        for name in tables:
            progress.update(task, description=f"{name}: loading")
            split = load_real_split(name, max_rows)
            splits[name] = split.describe()
            oracles: dict[int, dict] = {}
            for fraction in fractions:
                pending: list[dict] = []

                def saved(run, name=name, fraction=fraction, pending=pending):
                    pending.append(run)
                    progress.advance(task)
                    if partial_out is not None:
                        _write_json(partial_out, {"splits": splits, "cells": cells,
                                                  "current": {"table": name, "fraction": fraction,
                                                              "runs": pending}})

                progress.update(task, description=f"{name} {fraction:.0%}")
                cells.append(run_cell(split, fraction, seeds, oracles, on_run=saved))
                cells[-1]["split"] = splits[name]
                if console is not None:
                    progress.console.print(_cell_line(cells[-1]))
    if partial_out is not None:
        _write_json(partial_out, {"splits": splits, "cells": cells})
    return cells


def summarize(cells: list[dict]) -> dict:
    """Mean over tables per fraction and method (tables where every method scored), the
    cells where selftrain is below the labeled-only RF, and the fit-time ratio to sklearn."""
    fractions = sorted({c["fraction"] for c in cells})
    per_fraction = {}
    for fraction in fractions:
        here = [c for c in cells if c["fraction"] == fraction]
        complete = [c for c in here if all(m in c["methods"] for m in METHODS)]
        per_fraction[f"{fraction:g}"] = {
            "n_tables": len(complete),
            "tables_left_out": {c["table"]: _why_incomplete(c) for c in here
                                if c not in complete},
            "accuracy_mean": {m: _mean([c["methods"][m]["accuracy_mean"] for c in complete])
                              for m in METHODS},
            "macro_f1_mean": {m: _mean([c["methods"][m]["macro_f1_mean"] for c in complete])
                              for m in METHODS},
        }
    pair = {"selftrain_recommended", "labeled_only_rf"}
    compared = [c for c in cells if pair <= c["methods"].keys()]
    deltas = [{"table": c["table"], "fraction": c["fraction"],
               "selftrain_recommended": c["methods"]["selftrain_recommended"]["accuracy_mean"],
               "labeled_only_rf": c["methods"]["labeled_only_rf"]["accuracy_mean"]}
              for c in compared]
    for d in deltas:
        d["delta"] = d["selftrain_recommended"] - d["labeled_only_rf"]
    below = {f"{m:g}": [d for d in deltas if d["delta"] < -m] for m in LOSS_MARGINS}
    above = {f"{m:g}": [d for d in deltas if d["delta"] > m] for m in LOSS_MARGINS}
    own = []  # against the labeled-only model the recommended fit falls back to (issue 11)
    for c in compared:
        pairs = [(r["methods"]["selftrain_recommended"].get("accuracy"), r["fallback_accuracy"])
                 for r in c["runs"] if "methods" in r and r.get("fallback_accuracy") is not None]
        pairs = [(a, b) for a, b in pairs if a is not None]
        if pairs:
            own.append({"table": c["table"], "fraction": c["fraction"],
                        "delta": statistics.fmean(a - b for a, b in pairs)})
    ratios = [(c["fraction"], run["methods"]["selftrain_recommended"]["fit_seconds"]
               / run["methods"]["sklearn_self_training"]["fit_seconds"])
              for c in cells for run in c["runs"] if "methods" in run
              and all("fit_seconds" in run["methods"][m]
                      for m in ("selftrain_recommended", "sklearn_self_training"))]
    return {
        "per_fraction": per_fraction,
        "n_cells_compared": len(deltas),
        "selftrain_below_labeled_only_rf": {m: {"count": len(v), "cells": v}
                                            for m, v in below.items()},
        "selftrain_above_labeled_only_rf": {m: {"count": len(v), "cells": v}
                                            for m, v in above.items()},
        "selftrain_below_own_fallback_0.01": {
            "count": sum(d["delta"] < -0.01 for d in own), "n_cells": len(own),
            "cells": [d for d in own if d["delta"] < -0.01]},
        "fit_time_ratio_selftrain_over_sklearn_st": {
            "median": _median([r for _, r in ratios]),
            "min": min((r for _, r in ratios), default=None),
            "max": max((r for _, r in ratios), default=None),
            "n_runs": len(ratios),
            "median_per_fraction": {f"{f:g}": _median([r for g, r in ratios if g == f])
                                    for f in fractions},
        },
    }


def build_result(cells: list[dict], args: argparse.Namespace, wall_seconds: float) -> dict:
    wanted = set(args.tables)
    return {
        "protocol": protocol(args),
        "machine": machine_info(),
        "wall_seconds": wall_seconds,
        "tables": [row for row in describe_tables() if row["name"] in wanted],
        "cells": cells,
        "summary": summarize(cells),
    }


def protocol(args: argparse.Namespace) -> dict:
    return {
        "tables": list(args.tables),
        "fractions": list(args.fractions),
        "seeds": list(range(args.seeds)),
        "max_rows": args.max_rows,
        "blas_openmp_threads": args.threads,
        "test_size": TEST_SIZE,
        "split_seed": SPLIT_SEED,
        "methods": {
            "labeled_only_rf": "RandomForestClassifier(100, random_state=seed), labeled rows",
            "best_labeled_only": f"best by test accuracy of {', '.join(ESTIMATOR_NAMES)} "
                                 "(selftrain.estimators), labeled rows; winner recorded",
            "sklearn_self_training": "sklearn SelfTrainingClassifier(RandomForest(100)), "
                                     "default arguments",
            "label_spreading": "StandardScaler + sklearn LabelSpreading(kernel='knn', "
                               "n_neighbors=7, max_iter=100) (benchmarks.cells)",
            "selftrain_recommended": "build_classifier(SelfTrainingSettings(), seed, roles) "
                                     "on the raw frame (its own preprocessing, fitted on all "
                                     "training rows inside fit)",
            "selftrain_forest": "as selftrain_recommended with base_estimator="
                                "'random_forest' (the default before issue 11)",
            "fully_supervised": "RandomForestClassifier(100, random_state=seed), every "
                                "training label",
        },
        "notes": "tables larger than max_rows are a stratified sample (seed 0); the split is "
                 "stratified, seed 0; masking is stratified per seed; every method but "
                 "selftrain_recommended reads make_preprocessor(roles) fitted on all training "
                 "rows (its fit time is not counted); a run is skipped when a class keeps "
                 f"fewer than {MIN_LABELS_PER_CLASS} labels; fit time is the median over "
                 "seeds; best is among all methods but fully_supervised",
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
    }


def code_version() -> dict:
    """The git commit, whether the library's files differ from it, and the recommended
    settings: the numbers belong to the code that ran, which may move on during a run."""
    root = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True,
                                  timeout=30, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    changed = git("status", "--porcelain", "--", "selftrain")
    return {"git_head": git("rev-parse", "HEAD"),
            "selftrain_uncommitted": None if changed is None else changed.splitlines(),
            "selftrain_settings": SelfTrainingSettings().model_dump()}


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__,
        "note": "a shared machine: fit times are comparable within a run, not across machines",
    }


# -- output ----------------------------------------------------------------------------------


def print_cells(console: Console, result: dict) -> None:
    """A section per (table, fraction): accuracy and macro-F1 mean ± std, fit s; the best
    non-oracle method in bold."""
    table = Table(title="Real tables: accuracy on a fixed 25% test split (mean ± std over seeds)")
    for col, justify in [("table", "left"), ("labeled", "right"), ("method", "left"),
                         ("accuracy", "right"), ("macro-F1", "right"), ("fit s", "right"),
                         ("note", "left")]:
        table.add_column(col, justify=justify)
    for cell in result["cells"]:
        label = f"{cell['fraction']:.0%} ({cell['n_labeled']:g})"
        rows = list(cell["methods"].items())
        if not rows:
            table.add_row(cell["table"], label, "skipped", "", "", "", cell["skipped"][0],
                          end_section=True)
            continue
        for i, (method, stats) in enumerate(rows):
            table.add_row(
                cell["table"] if i == 0 else "", label if i == 0 else "", LABELS[method],
                _pm(stats, "accuracy"), _pm(stats, "macro_f1"),
                f"{stats['fit_seconds_median']:.2f}", _note(cell, method),
                style="bold" if method == cell["best"] else None, end_section=i == len(rows) - 1,
            )
    console.print(table)
    for cell in result["cells"]:
        where = f"{cell['table']} {cell['fraction']:.0%}"
        for reason in cell["skipped"]:
            console.print(f"{where}: skipped {reason}")
        for method, errors in cell["failed_methods"].items():
            console.print(f"{where}: {method} failed: {'; '.join(errors)}")


def print_summary(console: Console, summary: dict) -> None:
    """Mean over tables per fraction, selftrain's losses to the labeled-only RF, time ratio."""
    fractions = list(summary["per_fraction"])
    table = Table(title="Mean test accuracy over tables (tables where every method scored)")
    table.add_column("method")
    for f in fractions:
        n = summary["per_fraction"][f]["n_tables"]
        table.add_column(f"{float(f):.0%} ({n} tables)", justify="right")
    for method in METHODS:
        table.add_row(LABELS[method], *(_fmt(summary["per_fraction"][f]["accuracy_mean"][method])
                                        for f in fractions),
                      style="bold" if method == "selftrain_recommended" else None)
    console.print(table)
    for f in fractions:
        for name, why in summary["per_fraction"][f]["tables_left_out"].items():
            console.print(f"{float(f):.0%}: {name} left out of the mean ({why})")
    for line in _summary_lines(summary):
        console.print(line)


def format_markdown(result: dict) -> str:
    """README-ready: the accuracy table (a row per table x fraction), the mean over tables,
    selftrain against the labeled-only RF, the time ratio, and the tables used."""
    summary = result["summary"]
    bases = any(c.get("selftrain_auto_fallbacks") for c in result["cells"])
    head = ["table", "labeled", *(LABELS[m] for m in METHODS), "best labeled-only model",
            *(["selftrain's labeled-only fallback (auto)"] if bases else [])]
    lines = ["### Accuracy per table (mean ± std over seeds; best in bold, the fully "
             "supervised bound excluded)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in result["cells"]:
        row = [cell["table"], f"{cell['fraction']:.0%} ({cell['n_labeled']:g})"]
        if not cell["methods"]:
            row += ["skipped"] * len(METHODS) + [""] * (len(head) - 2 - len(METHODS))
        else:
            for method in METHODS:
                stats = cell["methods"].get(method)
                text = "failed" if stats is None else _pm(stats, "accuracy")
                row.append(f"**{text}**" if method == cell["best"] else text)
            row.append(_counts(cell["best_labeled_only_winners"]))
            if bases:
                row.append(_counts(cell.get("selftrain_auto_fallbacks", {})))
        lines.append("| " + " | ".join(row) + " |")
    skipped = [f"- {c['table']} at {c['fraction']:.0%}: {r}" for c in result["cells"]
               for r in c["skipped"]]
    failed = [f"- {c['table']} at {c['fraction']:.0%}: {m} failed: {'; '.join(e)}"
              for c in result["cells"] for m, e in c["failed_methods"].items()]
    if skipped or failed:
        lines += ["", *skipped, *failed]
    fractions = list(summary["per_fraction"])
    head = ["method", *(f"{float(f):.0%} ({summary['per_fraction'][f]['n_tables']} tables)"
                        for f in fractions)]
    lines += ["", "### Mean test accuracy over tables", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in METHODS:
        values = [_fmt(summary["per_fraction"][f]["accuracy_mean"][method]) for f in fractions]
        name = f"**{LABELS[method]}**" if method == "selftrain_recommended" else LABELS[method]
        lines.append("| " + " | ".join([name, *values]) + " |")
    lines += ["", *(f"- {line}" for line in _summary_lines(summary))]
    lines += ["", "### Tables", "", "| table | label | rows (all) | rows used | classes | "
              "minority | text | date | missing |", "|" + "---|" * 9]
    used = {c["table"]: c["split"]["rows"] for c in result["cells"] if "split" in c}
    for row in result["tables"]:
        lines.append(f"| {row['name']} | {row['label']} | {row['rows']} | "
                     f"{used.get(row['name'], '')} | {row['classes']} | {row['minority']:.1%} | "
                     f"{row['text']} | {row['date']} | {row['missing']:.1%} |")
    proto = result["protocol"]
    lines += ["", f"Seeds {proto['seeds']}, at most {proto['max_rows']} rows per table, "
              f"scikit-learn {proto['scikit_learn']}, {result['machine']['cpu_count']} CPUs "
              f"(shared), {result['wall_seconds'] / 60:.0f} min. `python -m benchmarks."
              "real_tables`; numbers in `benchmarks/results/real_tables.json`."]
    return "\n".join(lines) + "\n"


def write_results(result: dict, out: Path) -> None:
    """The JSON at ``out`` and the markdown next to it."""
    _write_json(out, result)
    out.with_suffix(".md").write_text(format_markdown(result))


def _summary_lines(summary: dict) -> list[str]:
    n = summary["n_cells_compared"]
    lines = []
    for margin, below in summary["selftrain_below_labeled_only_rf"].items():
        cells = ", ".join(f"{d['table']}@{d['fraction']:.0%} ({d['delta']:+.3f})"
                          for d in below["cells"])
        lines.append(f"selftrain recommended below labeled-only RF by more than {margin}: "
                     f"{below['count']} of {n} cells" + (f" ({cells})" if cells else ""))
    for margin, above in summary["selftrain_above_labeled_only_rf"].items():
        lines.append(f"selftrain recommended above labeled-only RF by more than {margin}: "
                     f"{above['count']} of {n} cells")
    own = summary.get("selftrain_below_own_fallback_0.01")
    if own is not None:
        cells = ", ".join(f"{d['table']}@{d['fraction']:.0%} ({d['delta']:+.3f})"
                          for d in own["cells"])
        lines.append("selftrain recommended below its own labeled-only fallback by more than "
                     f"0.01: {own['count']} of {own['n_cells']} cells"
                     + (f" ({cells})" if cells else ""))
    ratio = summary["fit_time_ratio_selftrain_over_sklearn_st"]
    if ratio["median"] is not None:
        per = ", ".join(f"{float(f):.0%} {r:.1f}×" for f, r in ratio["median_per_fraction"].items()
                        if r is not None)
        lines.append(f"fit time, selftrain recommended / sklearn SelfTraining: median "
                     f"{ratio['median']:.1f}× over {ratio['n_runs']} runs (range "
                     f"{ratio['min']:.1f}×–{ratio['max']:.1f}×; per fraction {per})")
    return lines


def _note(cell: dict, method: str) -> str:
    if method == "best_labeled_only":
        return _counts(cell["best_labeled_only_winners"])
    stats, notes = cell["methods"][method], []
    if method == "selftrain_recommended" and cell.get("selftrain_auto_fallbacks"):
        notes.append("fallback " + _counts(cell["selftrain_auto_fallbacks"]))
    if "guard_z_per_seed" in stats:
        zs = ", ".join(f"{z:+.1f}" for z in stats["guard_z_per_seed"])
        notes.append(f"guard z {zs}; fallbacks {stats['guard_fallbacks']}")
    return "; ".join(notes)


def _counts(counter: dict) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in counter.items())


def _cell_line(cell: dict) -> str:
    if not cell["methods"]:
        return f"done {cell['table']} {cell['fraction']:.0%}: skipped ({cell['skipped'][0]})"
    accs = ", ".join(f"{m} {v['accuracy_mean']:.3f}" for m, v in cell["methods"].items())
    return f"done {cell['table']} {cell['fraction']:.0%}: {accs}"


def _why_incomplete(cell: dict) -> str:
    if cell["skipped"]:
        return "; ".join(cell["skipped"])
    missing = [m for m in METHODS if m not in cell["methods"]]
    return f"no score for {', '.join(missing)}"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    tmp.replace(path)  # never a half-written file


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
