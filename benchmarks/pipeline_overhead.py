"""What the pipeline costs on top of the fit it wraps (issue 3, "Speed").

Overhead: the same table and configuration through the bare fit
(``build_classifier(...).fit`` on the flow's own training arrays) and through the whole
training flow (validation, checkpoints, artifacts, gate, packaging), interleaved, each
in a fresh process, on digits and on a 200,000 x 50 synthetic table. Scale: tables of
``--sizes`` rows x 64 features end to end through the flow, one fresh process each, with
time per stage, per round and the process's peak memory. The Prefect server (one test
harness for the whole run) starts once and its start is reported on its own.

    python -m benchmarks.pipeline_overhead            # the full run (~25 min, 2 cores)
    python -m benchmarks.pipeline_overhead --quick    # digits only (~1-2 min)
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

from rich.console import Console
from rich.table import Table

from benchmarks.overhead_run import MARKER
from selftrain.offline import TELEMETRY_OFF

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
QUIET = {**TELEMETRY_OFF, "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
         "PREFECT_LOGGING_LEVEL": "WARNING"}
# One OpenMP thread per child unless the caller sets it: on a shared 2-core machine,
# HistGradientBoosting's spinning OpenMP threads ran a digits fit 10x slower (44 s vs 4.7 s).
THREADS = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
# Practical at 1M rows on 2 cores: the kNN label-spreading teacher does not scale, and
# patience > max_rounds makes the flow fit as many rounds as the bare fit does.
SETTINGS = ["self_training.base_estimator=hist_gradient_boosting", "self_training.teacher=null",
            "self_training.max_rounds=5", "self_training.patience=6"]
OVERHEAD_ROWS, OVERHEAD_FEATURES, SCALE_FEATURES = 200_000, 50, 64
BAR = 1.25
STAGE_ORDER = ("validate", "mask", "rounds", "evaluate", "gate", "package", "flow_other")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(QUIET)
    console = Console() if Console().is_terminal else Console(width=150)
    with tempfile.TemporaryDirectory(prefix="selftrain-bench-") as tmp:
        result = run_benchmark(Path(tmp), args, console)
    print_tables(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_overhead",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",") if x],
                        default=[100_000, 300_000, 1_000_000], help="scale rows, comma-separated")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of each overhead cell")
    parser.add_argument("--quick", action="store_true", help="digits overhead only")
    parser.add_argument("--scale-only", action="store_true", help="skip the overhead cells")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = []
    if args.out is None:
        name = "pipeline_overhead_quick.json" if args.quick else "pipeline_overhead.json"
        args.out = RESULTS / name
    return args


def run_benchmark(tmp: Path, args: argparse.Namespace, console: Console) -> dict:
    """Start the server, then the overhead cells, then the scale runs."""
    os.environ["PREFECT_HOME"] = str(tmp / "prefect-home-server")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    started = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=180):
        server_seconds = time.perf_counter() - started
        api = PREFECT_API_URL.value()
        console.print(f"Prefect server (test harness) up in {server_seconds:.1f} s at {api}")
        tables = {} if args.scale_only else {"digits": write_digits(tmp)}
        if not (args.quick or args.scale_only):
            tables[f"synthetic {OVERHEAD_ROWS:,} x {OVERHEAD_FEATURES}"] = write_synthetic(
                tmp, OVERHEAD_ROWS, OVERHEAD_FEATURES)
        result = {"settings": SETTINGS, "threads": THREADS, "server_start_seconds":
                  server_seconds, "bar": BAR, "overhead": [], "scale": [], "machine": machine()}
        overhead, scale = result["overhead"], result["scale"]
        for name, path in tables.items():
            overhead.append(measure_overhead(name, path, args.reps, tmp, api, console))
            save_partial(result, args.out)
        for rows in args.sizes:
            path = write_synthetic(tmp, rows, SCALE_FEATURES)
            run = run_child("flow", path, tmp, api)
            path.unlink()
            console.print(f"scale {rows:,} x {SCALE_FEATURES}: {run['seconds']:.1f} s, "
                          f"peak {run['peak_rss_mib']:.0f} MiB")
            scale.append({"rows": rows, "features": SCALE_FEATURES, **run})
            save_partial(result, args.out)
    return result


def save_partial(result: dict, out: Path) -> None:
    """Results so far, so a long run that is cut short still leaves its numbers."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".partial.json").write_text(json.dumps(result, indent=2) + "\n")


def measure_overhead(name: str, path: Path, reps: int, tmp: Path, api: str,
                     console: Console) -> dict:
    """Bare fit and flow, interleaved ``reps`` times; medians and their ratio."""
    runs: dict[str, list[dict]] = {"bare": [], "flow": []}
    for rep in range(reps):
        for mode in ("bare", "flow"):
            run = run_child(mode, path, tmp, api)
            runs[mode].append(run)
            console.print(f"{name}: {mode} rep {rep + 1}/{reps}: {run['seconds']:.2f} s")
    bare = statistics.median(r["seconds"] for r in runs["bare"])
    flow = statistics.median(r["seconds"] for r in runs["flow"])
    stages = {s: statistics.median(r["stages"].get(s, 0.0) for r in runs["flow"])
              for s in STAGE_ORDER}
    ratio = flow / bare
    return {"table": name, "bare_seconds": bare, "flow_seconds": flow, "ratio": ratio,
            "passed": ratio <= BAR if name != "digits" else None, "flow_stages": stages,
            "fits": {m: runs[m][0]["n_fits"] for m in runs}, "runs": runs}


def run_child(mode: str, table: Path, tmp: Path, api: str) -> dict:
    """One measurement in a fresh process with its own CWD, PREFECT_HOME, BENTOML_HOME."""
    cwd = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=tmp))
    env = {**os.environ, **QUIET, **THREADS, "PREFECT_API_URL": api,
           "PREFECT_HOME": str(cwd / "prefect"), "BENTOML_HOME": str(cwd / "bentoml"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "benchmarks.overhead_run", "--mode", mode,
               "--set", f"data.path={table}", *(a for s in SETTINGS for a in ("--set", s))]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} run on {table} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(MARKER))


def write_digits(tmp: Path) -> Path:
    from selftrain.datasets import export_digits

    return export_digits(tmp / "digits.csv")


def write_synthetic(tmp: Path, rows: int, features: int) -> Path:
    """A seeded 5-class ``make_classification`` table as Parquet (not timed)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=features, n_informative=20,
                               n_redundant=10, n_classes=5, class_sep=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "label", y.astype(np.int64))
    frame.insert(0, "id", np.arange(rows, dtype=np.int64))
    path = tmp / f"synthetic_{rows}x{features}.parquet"
    frame.to_parquet(path, index=False)
    return path


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform()}


def _stage_cells(stages: dict) -> list[str]:
    return [f"{stages.get(s, 0.0):.1f}" for s in STAGE_ORDER]


def print_tables(console: Console, result: dict) -> None:
    console.print(f"Settings: {', '.join(result['settings'])}, {result['threads']}; "
                  f"Prefect server start {result['server_start_seconds']:.1f} s (not counted)")
    table = Table(title="Overhead: bare fit vs whole flow (median seconds)")
    for col in ("table", "bare fit", "flow", "flow/bare", f"<= {BAR}x", *STAGE_ORDER):
        table.add_column(col, justify="left" if col == "table" else "right")
    for row in result["overhead"]:
        verdict = {None: "-", True: "yes", False: "NO"}[row["passed"]]
        table.add_row(row["table"], f"{row['bare_seconds']:.2f}", f"{row['flow_seconds']:.2f}",
                      f"{row['ratio']:.2f}x", verdict, *_stage_cells(row["flow_stages"]))
    console.print(table)
    if not result["scale"]:
        return
    table = Table(title=f"Scale: the flow end to end, x {SCALE_FEATURES} features (seconds)")
    for col in ("rows", "total", *STAGE_ORDER, "per round", "peak MiB"):
        table.add_column(col, justify="right")
    for row in result["scale"]:
        rounds = " ".join(f"{s:.0f}" for s in row["round_seconds"])
        table.add_row(f"{row['rows']:,}", f"{row['seconds']:.1f}", *_stage_cells(row["stages"]),
                      rounds, f"{row['peak_rss_mib']:.0f}")
    console.print(table)


def markdown(result: dict) -> str:
    """README-ready tables."""
    heads = " | ".join(STAGE_ORDER)
    lines = [f"Settings: `{' '.join(result['settings'])}`; Prefect server start "
             f"{result['server_start_seconds']:.1f} s, not counted.", "",
             f"| table | bare fit (s) | flow (s) | flow/bare | {heads} |",
             "|---|" + "---:|" * (4 + len(STAGE_ORDER))]
    for row in result["overhead"]:
        lines.append(f"| {row['table']} | {row['bare_seconds']:.2f} | {row['flow_seconds']:.2f}"
                     f" | {row['ratio']:.2f}x | {' | '.join(_stage_cells(row['flow_stages']))} |")
    if result["scale"]:
        lines += ["", f"| rows x {SCALE_FEATURES} | total (s) | {heads} | per round (s) | "
                  "peak RSS (MiB) |", "|---:|" + "---:|" * (3 + len(STAGE_ORDER))]
        for row in result["scale"]:
            rounds = ", ".join(f"{s:.1f}" for s in row["round_seconds"])
            lines.append(f"| {row['rows']:,} | {row['seconds']:.1f} | "
                         f"{' | '.join(_stage_cells(row['stages']))} | {rounds} | "
                         f"{row['peak_rss_mib']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
