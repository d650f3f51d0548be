"""The ``selftrain`` command line: ``selftrain run``, ``prepare``, ``serve``, ``deploy``."""

from __future__ import annotations

import os

from selftrain.offline import set_offline_defaults

# Offline and quiet by default; must be set before Prefect is imported.
set_offline_defaults(PREFECT_SERVER_LOGGING_LEVEL="CRITICAL",
                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")

from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from selftrain.config import (  # noqa: E402
    ConfigError,
    inert_settings,
    load_config,
    parameter_table,
)

app = typer.Typer(help="Self-training pipelines: few labels in, a served classifier out.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="the params file")] = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-S", help="override a parameter: --set self_training.threshold=0.9")] = None,
    verbose: Annotated[bool, typer.Option(help="show Prefect's logs and tracebacks")] = False,
    force: Annotated[bool, typer.Option(help="train even if nothing changed")] = False,
    wait: Annotated[bool, typer.Option(help="queue behind a run already in this workspace")
                    ] = False,
) -> None:
    """Run the training pipeline: validate, mask, self-train, evaluate, gate, package."""
    try:
        cfg = load_config(config if config.exists() or config != Path("params.yaml") else None,
                          set_ or [])
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    for warning in inert_settings(cfg):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.progress import run_with_progress

    summary = run_with_progress(cfg, str(config) if config.exists() else None, console, verbose,
                                force, wait)
    print_summary(summary)


@app.command()
def params(
    config: Annotated[Path, typer.Option(help="the params file")] = Path("params.yaml"),
) -> None:
    """List every parameter: its key, default, value in the params file, and meaning."""
    try:
        current = load_config(config if config.exists() else None)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    values = current.model_dump(mode="json")
    table = Table(title=f"parameters ({config if config.exists() else 'defaults'})")
    for column in ("key", "default", "value", "meaning"):
        table.add_column(column, overflow="fold")
    for key, default, description in parameter_table():
        value = values
        for part in key.split("."):
            value = value[part]
        shown = "" if value == default else str(value)
        table.add_row(key, str(default), shown, description)
    Console().print(table)
    for warning in inert_settings(current):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command()
def prepare(path: Annotated[Path, typer.Argument()] = Path("data/raw/digits.csv")) -> None:
    """Export the embedded default table (scikit-learn's digits) to CSV."""
    from selftrain.datasets import export_digits

    console.print(f"wrote {export_digits(path)}")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(
        help="default: the serving.port the model was trained with (3000)")] = None,
    tag: Annotated[str | None, typer.Option(help="model tag; default: the latest promoted")] = None,
) -> None:
    """Serve the promoted model on 127.0.0.1 (POST /predict, /predict_proba, GET /metadata)."""
    from serving.model import NoPromotedModel
    from serving.run import serve as start_server

    try:
        code = start_server(port=port, tag=tag)
    except NoPromotedModel as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def deploy(
    cron: Annotated[str, typer.Option(help="the schedule, a cron string")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="the cron's time zone")] = "UTC",
    name: Annotated[str, typer.Option(help="the deployment's name")] = "nightly",
    config: Annotated[Path, typer.Option(help="default parameters")] = Path("params.yaml"),
) -> None:
    """Serve the deployment train-pipeline/<name> on PREFECT_API_URL: scheduled and UI runs."""
    from flows.deploy import NoPrefectServer, serve_deployment

    try:
        serve_deployment(name=name, cron=cron, timezone=timezone, params_path=(
            config if config.exists() or config != Path("params.yaml") else None))
    except (ConfigError, NoPrefectServer) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def print_summary(summary: dict) -> None:
    from flows.progress import print_gate

    if summary.get("unchanged"):
        Console().print("[green]unchanged[/green]: the table and parameters are those of the last "
                        f"run, nothing trained; its model: {summary['destination']} "
                        "(--force to train anyway)")
        return
    table = Table(title="selftrain run")
    table.add_column("model")
    table.add_column("test accuracy", justify="right")
    table.add_column("macro-F1", justify="right")
    table.add_row("labeled-only baseline", f"{summary['baseline_accuracy']:.4f}",
                  f"{summary['baseline_macro_f1']:.4f}")
    table.add_row(f"chosen round {summary['chosen_round']}", f"{summary['test_accuracy']:.4f}",
                  f"{summary['test_macro_f1']:.4f}")
    if summary.get("champion_accuracy") is not None:
        table.add_row(f"champion {summary['champion_tag']}",
                      f"{summary['champion_accuracy']:.4f}", "")
    out = Console()
    out.print(table)
    out.print(f"base estimator: {summary['base_estimator']} (chosen by cross-validation when "
              f"'auto'); guard: {summary['guard']}", highlight=False)
    for line in summary.get("column_roles", []):
        out.print(f"columns: {line}", highlight=False)
    print_gate(out, summary)
    if summary.get("pseudo_label_accuracy") is not None:
        out.print(f"pseudo-labels: {summary['n_pseudo_labeled']} rows, "
                  f"{summary['pseudo_label_accuracy']:.1%} correct (simulation mode)")


from flows.sweep_cli import sweep_command  # noqa: E402 - after the settings above

app.command("sweep")(sweep_command)

if __name__ == "__main__":
    app()
