"""Live display of a pipeline run in the terminal, and clean errors for the CLI."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from selftrain.config import PipelineConfig


def run_with_progress(config: PipelineConfig, params_path: str | None, console: Console,
                      verbose: bool, force: bool = False) -> dict:
    """Run the flow with a progress bar over rounds; user errors exit non-zero, no traceback."""
    from flows.train import train_pipeline
    from tasks.self_train import ROUND_LISTENERS
    from tasks.validate import DataValidationError

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("round {task.completed:.0f}/{task.total:.0f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("validating and preparing", total=config.self_training.max_rounds)

        def on_round(record: dict) -> None:
            val = record.get("val_accuracy")
            progress.update(bar, completed=record["round"], description=(
                f"round {record['round']}: +{record['n_added']} pseudo-labels, "
                f"val acc {'n/a' if val is None else f'{val:.4f}'}"))

        ROUND_LISTENERS.append(on_round)
        try:
            return train_pipeline(config, params_path, force)
        except DataValidationError as exc:
            console.print(f"[red]data validation failed:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except Exception as exc:
            if verbose:
                raise
            console.print(f"[red]pipeline failed:[/red] {type(exc).__name__}: {exc}\n"
                          "(rerun with --verbose for the traceback; finished rounds resume)",
                          highlight=False)
            raise typer.Exit(1) from None
        finally:
            ROUND_LISTENERS.remove(on_round)
