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
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
         "GX_ANALYTICS_ENABLED": "False", "BENTOML_DO_NOT_TRACK": "True",
         "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL", "PREFECT_LOGGING_LEVEL": "WARNING",
         "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
# light: the flow's default grid, where fixed costs (cluster start, imports, validation,
# packaging) dominate; heavy: candidates long enough for the fan-out to show.
SCENARIOS = {
    "light": ({"base_estimators": ["random_forest", "logistic_regression"],
               "thresholds": [0.8, 0.95], "labeled_fractions": [0.1]},
              ["self_training.max_rounds=5"]),
    "heavy": ({"base_estimators": ["random_forest", "logistic_regression"],
               "thresholds": [0.9, 0.99], "labeled_fractions": [0.1, 0.3]},
              ["self_training.max_rounds=10"]),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args.scenario, args.workers, args.out)
    runs = [measure(args.scenario, w) for _ in range(args.repeats) for w in (1, 2)]
    result = summarize(args.scenario, runs)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged[args.scenario] = result
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="light")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_speedup.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(scenario: str, workers: int) -> dict:
    """One sweep in a fresh process and directory; returns its timings."""
    with tempfile.TemporaryDirectory(prefix="selftrain-sweep-bench-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, **QUIET, "PYTHONPATH": str(ROOT), "PREFECT_HOME": f"{tmp}/prefect",
               "BENTOML_HOME": f"{tmp}/bentoml"}
        subprocess.run([sys.executable, "-m", "benchmarks.sweep_speedup", "--child",
                        "--scenario", scenario, "--workers", str(workers), "--out", str(out)],
                       cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        run = json.loads(out.read_text())
    print(f"workers={workers}: {run['wall_s']:.1f} s", flush=True)
    return run


def run_child(scenario: str, workers: int, out: Path) -> int:
    from flows.sweep import dask_runner, shared_api, sweep
    from selftrain.config import load_config
    from selftrain.datasets import export_digits

    grid, settings = SCENARIOS[scenario]
    export_digits(Path("data/raw/digits.csv"))
    with shared_api():
        start = time.perf_counter()
        summary = sweep.with_options(task_runner=dask_runner(workers))(
            load_config(None, settings), **grid)
        wall = time.perf_counter() - start
    rows = summary["candidates"]
    out.write_text(json.dumps({
        "workers": workers, "wall_s": wall,
        "candidate_s": [r["seconds"] for r in rows], "processes": len({r["pid"] for r in rows}),
        "best": summary["best"], "val_accuracy": {r["name"]: r["metrics"]["val_accuracy"]
                                                  for r in rows},
    }))
    return 0


def summarize(scenario: str, runs: list[dict]) -> dict:
    by = {w: [r for r in runs if r["workers"] == w] for w in (1, 2)}
    median = {w: statistics.median(r["wall_s"] for r in rs) for w, rs in by.items()}
    same_choice = len({r["best"] for r in runs}) == 1
    return {
        "grid": SCENARIOS[scenario][0], "settings": SCENARIOS[scenario][1],
        "table": "digits (1797 rows x 64)",
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
    print(f"\nsweep of {len(result['runs'][0]['candidate_s'])} candidates, "
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
