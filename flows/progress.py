"""Live display of a pipeline run in the terminal, and clean errors for the CLI."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from selftrain.config import PipelineConfig


def run_with_progress(config: PipelineConfig, params_path: str | None, console: Console,
                      verbose: bool, force: bool = False, wait: bool = False) -> dict:
    """Run the flow with a progress bar over rounds; user errors exit non-zero, no traceback."""
    from flows.train import train_pipeline
    from tasks.self_train import ROUND_LISTENERS
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("round {task.completed:.0f}/{task.total:.0f}"), TimeElapsedColumn())
    # The error handler is outside the live display: the bar stops before a message prints,
    # so nothing is drawn after an error.
    with user_errors(console, verbose, "pipeline", "; finished rounds resume"), \
            Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("validating and preparing", total=config.self_training.max_rounds)

        def on_round(record: dict) -> None:
            val = record.get("val_accuracy")
            progress.update(bar, completed=record["round"], description=(
                f"round {record['round']}: +{record['n_added']} pseudo-labels, "
                f"val acc {'n/a' if val is None else f'{val:.3f}'}"))

        ROUND_LISTENERS.append(on_round)
        try:
            return train_pipeline(config, params_path, force, wait)
        finally:
            ROUND_LISTENERS.remove(on_round)


@contextmanager
def user_errors(console: Console, verbose: bool, what: str, hint: str = ""):
    """Bad data and failures end in one message and exit code 1; --verbose re-raises."""
    from tasks.validate import DataValidationError
    from tasks.workspace import RunLocked

    try:
        with _quiet_logs(not verbose):
            yield
    except DataValidationError as exc:
        console.print(f"[red]data validation failed:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except RunLocked as exc:
        console.print(f"[red]not started:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:
        if verbose:
            raise
        console.print(f"[red]{what} failed:[/red] {type(exc).__name__}: {exc}\n"
                      f"(rerun with --verbose for the traceback{hint})", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def _quiet_logs(quiet: bool):
    """Without --verbose our one-line messages replace Prefect's failure tracebacks."""
    names = ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.task_engine",
             "prefect.flow_engine", "py.warnings")
    loggers = [logging.getLogger(name) for name in names] if quiet else []
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def print_gate(out: Console, summary: dict, label: str = "") -> None:
    """The gate's verdict, where the model went, and each reason."""
    verdict = "[green]promoted[/green]" if summary["promoted"] else "[yellow]not promoted[/yellow]"
    out.print(f"{label}{verdict} -> {summary['destination']}")
    for reason in summary["gate_reasons"]:
        out.print(f"  {reason}", highlight=False)
