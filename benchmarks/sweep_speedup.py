"""Wall time of the Dask sweep with 1 and 2 local workers on the same grid (issue 6).

Each run is a fresh process in a fresh directory (cold imports, empty round caches, its
own Prefect API started before the clock), runs interleaved 1, 2, 1, 2, ... The clock
covers the whole flow: cluster start, validation, masking, candidates, gate, packaging.

    python -m benchmarks.sweep_speedup                     # light, 2 repeats (~3 min)
    python -m benchmarks.sweep_speedup --scenario heavy --repeats 1   # 8 candidates (~5 min)

Each scenario's result is merged into ``results/sweep_speedup.json`` under its name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from selftrain.offline import TELEMETRY_OFF

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
QUIET = {**TELEMETRY_OFF, "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
         "PREFECT_LOGGING_LEVEL": "WARNING",
         "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
# light/heavy: digits, where candidates take ~1-3 s and fixed costs (cluster start, worker
# imports, validation, packaging) dominate; large: a 20,000-row synthetic table, where the
# candidates' own work does.
SCENARIOS = {
    "light": ({"base_estimators": ["random_forest", "logistic_regression"],
               "thresholds": [0.8, 0.95], "labeled_fractions": [0.1]},
              ["self_training.max_rounds=5"], "digits"),
    "heavy": ({"base_estimators": ["random_forest", "logistic_regression"],
               "thresholds": [0.9, 0.99], "labeled_fractions": [0.1, 0.3]},
              ["self_training.max_rounds=10"], "digits"),
    # Low thresholds: rows are added every round, so each candidate runs all its rounds.
    "large": ({"base_estimators": ["random_forest", "logistic_regression"],
               "thresholds": [0.5, 0.7], "labeled_fractions": [0.1]},
              ["self_training.max_rounds=5", "self_training.teacher=null",
               "data.path=data/raw/synthetic.csv"], "synthetic 20000 x 40"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args.scenario, args.workers, args.out, args.warm)
    runs = [measure(args.scenario, w, args.warm) for _ in range(args.repeats) for w in (1, 2)]
    result = summarize(args.scenario, runs) | {"warm_cluster": args.warm}
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged[args.scenario + ("-warm" if args.warm else "")] = result
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="light")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warm", action="store_true",
                        help="an existing cluster (address=), started and warmed before the clock")
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_speedup.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(scenario: str, workers: int, warm: bool) -> dict:
    """One sweep in a fresh process and directory; returns its timings."""
    with tempfile.TemporaryDirectory(prefix="selftrain-sweep-bench-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, **QUIET, "PYTHONPATH": str(ROOT), "PREFECT_HOME": f"{tmp}/prefect",
               "BENTOML_HOME": f"{tmp}/bentoml"}
        subprocess.run([sys.executable, "-m", "benchmarks.sweep_speedup", "--child",
                        "--scenario", scenario, "--workers", str(workers), "--out", str(out),
                        *(["--warm"] if warm else [])],
                       cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        run = json.loads(out.read_text())
    print(f"workers={workers}: {run['wall_s']:.1f} s", flush=True)
    return run


def run_child(scenario: str, workers: int, out: Path, warm: bool) -> int:
    from flows.sweep import dask_runner, shared_api, sweep
    from selftrain.config import load_config
    from selftrain.datasets import export_digits

    grid, settings, table = SCENARIOS[scenario]
    export_digits(Path("data/raw/digits.csv"))
    if table.startswith("synthetic"):
        write_synthetic(Path("data/raw/synthetic.csv"))
    with shared_api(), warm_cluster(workers) if warm else nullcontext() as address:
        runner = dask_runner(workers, address)
        start = time.perf_counter()
        summary = sweep.with_options(task_runner=runner)(load_config(None, settings), **grid)
        wall = time.perf_counter() - start
    rows = summary["candidates"]
    out.write_text(json.dumps({
        "workers": workers, "wall_s": wall,
        "candidate_s": [r["seconds"] for r in rows], "processes": len({r["pid"] for r in rows}),
        "best": summary["best"], "val_accuracy": {r["name"]: r["metrics"]["val_accuracy"]
                                                  for r in rows},
    }))
    return 0


@contextmanager
def warm_cluster(workers: int):
    """A running cluster whose workers have already imported the pipeline: its address."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.run(lambda: __import__("flows.sweep"))
        yield cluster.scheduler_address


def write_synthetic(path: Path, rows: int = 20_000, features: int = 40) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=features, n_informative=20,
                               n_classes=5, class_sep=0.8, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "label", y)
    frame.insert(0, "id", range(rows))
    frame.to_csv(path, index=False)


def summarize(scenario: str, runs: list[dict]) -> dict:
    by = {w: [r for r in runs if r["workers"] == w] for w in (1, 2)}
    median = {w: statistics.median(r["wall_s"] for r in rs) for w, rs in by.items()}
    same_choice = len({r["best"] for r in runs}) == 1
    return {
        "grid": SCENARIOS[scenario][0], "settings": SCENARIOS[scenario][1],
        "table": SCENARIOS[scenario][2],
        "machine": f"{os.cpu_count()} cores, shared with other jobs; {platform.platform()}",
        "load_average_at_end": os.getloadavg(),
        "runs": runs, "median_wall_s": median,
        "median_candidate_s": {w: statistics.median(s for r in rs for s in r["candidate_s"])
                               for w, rs in by.items()},
        "speedup_2_vs_1": median[1] / median[2],
        "same_best_and_scores": same_choice and len({json.dumps(r["val_accuracy"], sort_keys=True)
                                                     for r in runs}) == 1,
    }


def print_table(result: dict) -> None:
    print(f"\nsweep of {len(result['runs'][0]['candidate_s'])} candidates on {result['table']}, "
          f"{', '.join(result['settings'])} ({result['machine']})")
    print(f"{'workers':>8} {'median wall s':>14} {'runs':>20} {'median candidate s':>19}")
    for w in (1, 2):
        walls = [f"{r['wall_s']:.1f}" for r in result["runs"] if r["workers"] == w]
        print(f"{w:>8} {result['median_wall_s'][w]:>14.1f} {' '.join(walls):>20} "
              f"{result['median_candidate_s'][w]:>19.1f}")
    print(f"speed-up 2 vs 1 worker: {result['speedup_2_vs_1']:.2f}x; same best candidate and "
          f"scores in every run: {result['same_best_and_scores']}")


if __name__ == "__main__":
    sys.exit(main())
