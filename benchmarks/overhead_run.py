"""One measurement of ``benchmarks.pipeline_overhead``, in its own process.

Runs either the bare fit (``build_classifier(...).fit`` on the flow's own training
arrays) or the whole training flow against the Prefect API in ``PREFECT_API_URL``, and
prints one JSON line (prefixed ``RESULT``) with the wall time, the per-stage times read
from the Prefect API, and this process's peak memory. Imports are not timed.

    python -m benchmarks.overhead_run --mode flow --set data.path=t.parquet --set ...
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from selftrain.config import PipelineConfig, load_config

MARKER = "RESULT "
# Task names in flows/train.py, grouped into the stages the report shows.
STAGES = {"validate-table": "validate", "mask": "mask", "self-train-round": "rounds",
          "evaluate": "evaluate", "gate": "gate", "package": "package",
          "keep-candidate": "package"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead_run")
    parser.add_argument("--mode", choices=("bare", "flow"), required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    config = load_config(None, args.overrides)
    result = time_bare(config) if args.mode == "bare" else time_flow(config)
    result["peak_rss_mib"] = peak_rss_mib()
    print(MARKER + json.dumps(result), flush=True)
    return 0


def time_bare(config: PipelineConfig) -> dict:
    """The flow's training arrays (read + split, untimed), then only the fit, timed."""
    from selftrain.recommended import build_classifier
    from selftrain.splits import split_frame
    from tasks.validate import read_table

    splits = split_frame(read_table(Path(config.data.path)), config)
    clf = build_classifier(config.self_training, config.seed)
    started = time.perf_counter()
    clf.fit(splits.X_train, splits.y_train)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(clf.predict(splits.X_test) == splits.y_test))
    return {"mode": "bare", "seconds": seconds, "n_fits": len(clf.history_),
            "test_accuracy": accuracy, "n_train": len(splits.y_train)}


def time_flow(config: PipelineConfig) -> dict:
    """The whole flow, timed from the call to its return, then its task runs' durations."""
    from flows.train import train_pipeline

    started = time.perf_counter()
    state = train_pipeline(config, return_state=True)
    seconds = time.perf_counter() - started
    summary = state.result()
    tasks = read_task_runs(state.state_details.flow_run_id)
    stages: dict[str, float] = {}
    for run in tasks:
        stage = STAGES.get(run["task"], run["task"])
        stages[stage] = stages.get(stage, 0.0) + run["seconds"]
    rounds = [r["seconds"] for r in tasks if r["task"] == "self-train-round"]
    stages["flow_other"] = seconds - sum(stages.values())
    return {"mode": "flow", "seconds": seconds, "stages": stages, "round_seconds": rounds,
            "n_fits": len(rounds), "test_accuracy": summary["test_accuracy"],
            "chosen_round": summary["chosen_round"], "promoted": summary["promoted"],
            "task_runs": tasks}


def read_task_runs(flow_run_id, wait: float = 30.0) -> list[dict]:
    """Task runs of the flow run with their durations, once the API has them all final
    (task states reach the server as events, a moment after the flow returns)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            done = runs and all(r.state_type and r.state_type.value == "COMPLETED"
                                and r.end_time for r in runs)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    rows = [{"task": _task_name(r.name),
             "name": r.name, "seconds": _duration(r)} for r in runs]
    return sorted(rows, key=lambda row: row["name"])


def _task_name(run_name: str) -> str:
    """``round-3`` -> ``self-train-round``; ``validate-table-1a2`` -> ``validate-table``."""
    if run_name.startswith("round-"):
        return "self-train-round"
    base, _, suffix = run_name.rpartition("-")
    return base if base and len(suffix) == 3 else run_name


def _duration(run) -> float:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    return run.total_run_time.total_seconds()


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
