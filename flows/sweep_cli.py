"""``selftrain sweep``: the grid of candidates on Dask, from the command line.

Kept apart from ``flows/cli.py`` so that module stays one screen per command; imports of
Prefect and Dask wait until the command runs (the CLI sets Prefect's settings first).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.defaults import DEFAULT_GRID, DEFAULT_WORKERS
from selftrain.config import PARAMS_FILE, ConfigError, load_config

console = Console(stderr=True)


def sweep_command(
    estimator: Annotated[list[str] | None, typer.Option(
        help="base estimator (repeat): random_forest, logistic_regression, ...")] = None,
    threshold: Annotated[list[float] | None, typer.Option(
        help="confidence threshold (repeat); candidates use criterion=threshold")] = None,
    labeled_fraction: Annotated[list[float] | None, typer.Option(
        help="share of training labels kept in simulation mode (repeat)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="local Dask worker processes")
                       ] = DEFAULT_WORKERS,
    address: Annotated[str | None, typer.Option(
        help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (then --workers is "
             "ignored)")] = None,
    config: Annotated[Path, typer.Option(help="the params file")] = PARAMS_FILE,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-S", help="override a parameter: --set self_training.max_rounds=5")] = None,
    verbose: Annotated[bool, typer.Option(help="show Prefect's and Dask's logs")] = False,
) -> None:
    """Train a grid of candidates in parallel on Dask; promote the best by validation."""
    if not verbose:
        # Read by dask when it is first imported, here and in the worker processes.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.sweep import grid_configs

    grid = {"base_estimators": estimator or DEFAULT_GRID["base_estimators"],
            "thresholds": threshold or DEFAULT_GRID["thresholds"],
            "labeled_fractions": labeled_fraction or DEFAULT_GRID["labeled_fractions"]}
    try:
        cfg = load_config(config, set_ or [])
        grid_configs(cfg, **grid)  # refuse a bad grid before any cluster starts
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    summary = run_quietly(cfg, grid, workers, address, verbose)
    print_sweep(summary)


def run_quietly(cfg, grid: dict, workers: int, address: str | None, verbose: bool) -> dict:
    from flows.progress import user_errors
    from flows.sweep import run_sweep

    where = address or f"a local cluster of {workers} worker processes"
    n = len(grid["base_estimators"]) * len(grid["thresholds"]) * len(grid["labeled_fractions"])
    console.print(f"sweep: up to {n} candidates on {where}")
    with user_errors(console, verbose, "sweep"):
        return run_sweep(cfg, grid, workers=workers, address=address)


def print_sweep(summary: dict) -> None:
    from flows.progress import print_gate
    from tasks.sweep_report import flat_rows

    table = Table(title="selftrain sweep (best by validation accuracy)")
    for column in ("candidate", "val acc", "test acc", "baseline", "round", "seconds"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for row in flat_rows(summary["candidates"]):
        mark = " *" if row["name"] == summary["best"] else ""
        if row["error"]:
            table.add_row(row["name"], f"[red]{row['error'][:60]}[/red]", "", "", "", "")
            continue
        table.add_row(row["name"] + mark, f"{row['val_accuracy']:.4f}",
                      f"{row['test_accuracy']:.4f}", f"{row['baseline_accuracy']:.4f}",
                      str(row["chosen_round"]), f"{row['seconds']:.1f}")
    out = Console()
    out.print(table)
    print_gate(out, summary, label=f"best {summary['best']}: ")
    out.print("reports/sweep.png, metrics/sweep.json")
