"""Batch scoring: ``selftrain predict`` (with a progress bar) and the ``batch-score`` flow.

This module only wires ``tasks.score``: the flow runs its task, so a Prefect deployment can
score a table on a schedule (``batch_score_deployment``).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from selftrain.config import PARAMS_FILE, load_config
from tasks.score import (
    CHUNK_ROWS,
    ScoringSummary,
    batch_score,
    check_paths,
    default_refused_path,
    open_scoring_model,
    score_table,
)


def score_with_progress(input_path: Path, output_path: Path, model_name: str,
                        model_tag: str | None, refused_path: Path | None, chunk_rows: int,
                        console: Console) -> ScoringSummary:
    """``score_table`` with a rich progress bar on ``console``. The paths are checked
    before any model is looked up: a typo in ``--input`` is named first."""
    check_paths(Path(input_path), Path(output_path),
                Path(refused_path) if refused_path else default_refused_path(Path(output_path)))
    model = open_scoring_model(model_name, model_tag)
    console.print(f"model {model.tag}: {model.predictor.kind} ({model.predictor.why})",
                  highlight=False)
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
               TextColumn("rows"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task("score", total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(job, completed=done, total=total)

        return score_table(model, input_path, output_path, refused_path, chunk_rows, advance)


@flow(name="batch-score", description="Score a table offline with the promoted model")
def batch_score_flow(input_path: str, output_path: str,
                     model_name: str | None = None, model_tag: str | None = None,
                     refused_path: str | None = None, chunk_rows: int = CHUNK_ROWS) -> dict:
    """Score ``input_path`` into ``output_path`` (and the refused rows' side file) with the
    production model of ``model_name`` (default: params.yaml's model line), or ``model_tag``;
    returns the summary."""
    model_name = model_name or load_config(PARAMS_FILE).model_line
    return batch_score(input_path, output_path, model_name, model_tag, refused_path,
                       chunk_rows)


def batch_score_deployment(input_path: str, output_path: str, model_name: str,
                           cron: str = "0 3 * * *", timezone: str = "UTC",
                           name: str = "nightly-scoring"):
    """The ``batch-score/<name>`` deployment: ``input_path`` scored on a cron schedule into
    ``output_path``; serve it with ``prefect.serve(batch_score_deployment(...))`` against a
    Prefect server (as ``flows.deploy`` serves the training deployment)."""
    from prefect.flows import EntrypointType
    from prefect.schedules import Cron

    return batch_score_flow.to_deployment(
        name=name, schedules=[Cron(cron, timezone=timezone)],
        parameters={"input_path": input_path, "output_path": output_path,
                    "model_name": model_name},
        description="Score a table offline with the promoted model, on a schedule",
        tags=["selftrain", "scoring"], enforce_parameter_schema=True,
        entrypoint_type=EntrypointType.MODULE_PATH)


__all__ = ["batch_score_deployment", "batch_score_flow", "score_with_progress"]
