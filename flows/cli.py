"""The ``selftrain`` command line: ``selftrain run``, ``prepare``, ``serve``, ``predict``,
``deploy``, ``models``, ``promote``, ``rollback``."""

from __future__ import annotations

import os

from selftrain.offline import set_offline_defaults

# Offline and quiet by default; must be set before Prefect is imported.
set_offline_defaults(PREFECT_SERVER_LOGGING_LEVEL="CRITICAL",
                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")

from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from flows.defaults import DEPLOYMENT_NAME, NIGHTLY_CRON, TIMEZONE  # noqa: E402
from selftrain.config import (  # noqa: E402
    PARAMS_FILE,
    ConfigError,
    inert_settings,
    load_config,
    parameter_table,
    params_file,
)


@contextmanager
def one_message(*errors: type[Exception], code: int = 2):
    """A user's mistake ends in one red line and exit ``code``, never a traceback."""
    try:
        yield
    except errors as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code) from None


app = typer.Typer(help="Self-training pipelines: few labels in, a served classifier out.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True, emoji=False)


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="the params file")] = PARAMS_FILE,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-S", help="override a parameter: --set self_training.threshold=0.9")] = None,
    verbose: Annotated[bool, typer.Option(help="show Prefect's logs and tracebacks")] = False,
    force: Annotated[bool, typer.Option(help="train even if nothing changed")] = False,
    wait: Annotated[bool, typer.Option(help="queue behind a run already in this workspace")
                    ] = False,
) -> None:
    """Run the training pipeline: validate, mask, self-train, evaluate, gate, package."""
    with one_message(ConfigError, code=2):
        cfg = load_config(config, set_ or [])
    for warning in inert_settings(cfg):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.progress import run_with_progress

    used = params_file(config)
    summary = run_with_progress(cfg, used and str(used), console, verbose, force, wait)
    print_summary(summary)


@app.command()
def params(
    config: Annotated[Path, typer.Option(help="the params file")] = PARAMS_FILE,
) -> None:
    """List every parameter: its key, default, value in the params file, and meaning."""
    with one_message(ConfigError, code=2):
        current = load_config(config)
    values = current.model_dump(mode="json")
    table = Table(title=f"parameters ({params_file(config) or 'defaults'})")
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
    from selftrain.store import NoServableModel
    from serving.run import serve as start_server

    with one_message(NoServableModel, code=1):
        code = start_server(port=port, tag=tag)
    raise typer.Exit(code)


@app.command()
def predict(
    input_: Annotated[Path, typer.Option("--input", help="the table to score (.csv/.parquet)")],
    output: Annotated[Path, typer.Option(help="the predictions (.parquet)")],
    model: Annotated[str | None, typer.Option(
        help="model tag (name:version or version); default: the latest promoted")] = None,
    refused: Annotated[Path | None, typer.Option(
        help="refused rows with reasons (CSV); default: OUTPUT's name + .refused.csv")] = None,
    config: Annotated[Path, typer.Option(help="params file naming the model line")
                      ] = PARAMS_FILE,
    chunk_rows: Annotated[int, typer.Option(min=1, help="rows read and scored at a time")
                          ] = 100_000,
) -> None:
    """Score a whole table offline with the promoted model: label and class probabilities
    per row; rows the endpoint would refuse go to a side file with the reason."""
    from flows.batch import score_with_progress
    from tasks.score import ScoringError

    with one_message(ConfigError, ScoringError, code=2):
        name = load_config(config).model_line
        summary = score_with_progress(input_, output, name, model, refused, chunk_rows,
                                      console)
    Console().print(
        f"scored {summary.scored} of {summary.rows} rows with {summary.model_tag} "
        f"({summary.inference}) in {summary.seconds:.1f} s -> {summary.output}; "
        f"{summary.refused} refused -> {summary.refused_output}", highlight=False)


@app.command()
def deploy(
    cron: Annotated[str, typer.Option(help="the schedule, a cron string")] = NIGHTLY_CRON,
    timezone: Annotated[str, typer.Option(help="the cron's time zone")] = TIMEZONE,
    name: Annotated[str, typer.Option(help="the deployment's name")] = DEPLOYMENT_NAME,
    config: Annotated[Path, typer.Option(help="default parameters")] = PARAMS_FILE,
) -> None:
    """Serve the deployment train-pipeline/<name> on PREFECT_API_URL: scheduled and UI runs."""
    from flows.server import client_auth

    client_auth()  # before Prefect is imported: the API of `selftrain server` asks for it
    from flows.deploy import NoPrefectServer, serve_deployment

    with one_message(ConfigError, NoPrefectServer, code=2):
        serve_deployment(name=name, cron=cron, timezone=timezone, params_path=config)


@app.command()
def models(
    line: Annotated[str | None, typer.Option(help="only this model line")] = None,
) -> None:
    """List the model lines in the store, their versions, and which one is production."""
    from tasks.production import list_lines

    lines = list_lines(line)
    if not lines:
        console.print("no model lines in the store (run the pipeline until a model passes "
                      "the gate)", highlight=False)
        return
    table = Table(title="model lines")
    for column in ("line", "version", "stored", "test accuracy", "data", "status"):
        table.add_column(column, overflow="fold")
    for name, rows in lines.items():
        for row in rows:
            facts = row.entry.record.facts if row.entry.record else {}
            accuracy = facts.get("test_accuracy")
            table.add_row(name, row.entry.tag.partition(":")[2], row.entry.created[:19],
                          "" if accuracy is None else f"{accuracy:.4f}",
                          Path(str(facts.get("data_path", ""))).name, row.status)
    Console().print(table)


@app.command()
def promote(
    tag: Annotated[str, typer.Argument(help="the entry to serve, <line>:<version>")],
) -> None:
    """Make a stored model the production model of its line (logged; servers follow)."""
    from tasks.production import SwitchRefused, promote_tag

    with one_message(SwitchRefused, code=1):
        event = promote_tag(tag)
    console.print(f"production of {tag.partition(':')[0]}: {event.previous or 'none'} -> "
                  f"{event.tag}", highlight=False)


@app.command()
def rollback(
    line: Annotated[str | None, typer.Option(help="default: the line of --config")] = None,
    config: Annotated[Path, typer.Option(help="the params file")] = PARAMS_FILE,
) -> None:
    """Undo the last promotion of a line: its previous production model serves again."""
    from tasks.production import SwitchRefused, roll_back

    with one_message(ConfigError, SwitchRefused, code=1):
        name = line or load_config(config).model_line
        event = roll_back(name)
    console.print(f"production of {name}: {event.previous} -> {event.tag} (rolled back)",
                  highlight=False)


@app.command()
def server(
    port: Annotated[int, typer.Option(help="the port on 127.0.0.1")] = 4200,
) -> None:
    """Start the Prefect server and UI on 127.0.0.1, with credentials, CORS for its own UI
    only and CSRF protection (see flows/server.py; the UI asks for the credentials)."""
    from flows.server import auth_file, start_server

    console.print(f"Prefect UI: http://127.0.0.1:{port} (credentials: $PREFECT_SERVER_API_"
                  f"AUTH_STRING, else the file {auth_file()})", highlight=False)
    start_server(port)


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
    print_outputs(out)


def print_outputs(out: Console) -> None:
    """Where a run's files went (the model's place is in the gate's line)."""
    from tasks.workspace import METRICS_DIR, REPORTS_DIR

    out.print(f"metrics: {METRICS_DIR}/metrics.json, {METRICS_DIR}/rounds.csv\n"
              f"plots: {REPORTS_DIR}/rounds.png, {REPORTS_DIR}/confusion_matrix.png\n"
              f"Data Docs: {REPORTS_DIR}/data_docs/index.html", highlight=False)


from flows.sweep_cli import sweep_command  # noqa: E402 - after the settings above

app.command("sweep")(sweep_command)

if __name__ == "__main__":
    app()
