"""The training pipeline: validate -> mask -> rounds -> evaluate -> gate -> package.

This module only wires tasks; each stage lives in ``tasks/``.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from selftrain.config import PipelineConfig
from tasks.evaluate import evaluate_rounds, write_metrics
from tasks.fingerprint import fingerprint_run
from tasks.ledger import find_unchanged_run, record_run
from tasks.lineage import collect_lineage
from tasks.mask import mask_table
from tasks.promote import promote_candidate
from tasks.self_train import guard_rounds, round_model, run_rounds
from tasks.validate import validate_table
from tasks.workspace import METRICS_DIR, REPORTS_DIR, RUN_LOCK, WORK_DIR, exclusive


@flow(name="train-pipeline", description="Self-train a classifier and promote it if it earns it")
def train_pipeline(
    config: PipelineConfig = PipelineConfig(),  # noqa: B008 - Prefect renders it as a form
    params_path: str | None = None,
    force: bool = False,
    wait: bool = False,
) -> dict:
    """Train from ``config.data.path`` and promote to the BentoML model store if the gate
    passes. Returns the metrics, the gate's decision and where the model went.

    A run on the same table and configuration as the last finished run trains nothing and
    returns that run's summary with ``unchanged: True`` (``force=True`` trains anyway).
    One run at a time per workspace: another one exits at once with a message naming the
    holder (``wait=True`` queues behind it)."""
    with exclusive(RUN_LOCK, "this workspace", wait):
        return _train(config, params_path, force)


def _train(config: PipelineConfig, params_path: str | None, force: bool) -> dict:
    fingerprint = fingerprint_run(config)
    previous = None if force else find_unchanged_run(fingerprint)
    if previous is not None:
        create_markdown_artifact(key="train-summary", markdown=UNCHANGED_NOTE.format(**previous),
                                 description="Nothing changed since the last run")
        return previous
    table = validate_table(config, REPORTS_DIR, fingerprint.table_sha256)
    data = mask_table(table, config, WORK_DIR)
    del table
    verdict = guard_rounds(data, config)
    records, chosen = run_rounds(data, config, verdict)
    metrics = evaluate_rounds(records, chosen, verdict, data, REPORTS_DIR, METRICS_DIR)
    lineage = collect_lineage(config, fingerprint, params_path)
    model = data.served_model(round_model(data, config, chosen, verdict["base_estimator"]),
                              config)
    summary = {**metrics, **lineage, "column_roles": data.roles.report(),
               **promote_candidate(model, data, config, metrics, lineage)}
    write_metrics({k: v for k, v in summary.items() if not isinstance(v, dict | list)}
                  | {"gate_reasons": summary["gate_reasons"]}, METRICS_DIR)
    create_markdown_artifact(key="train-summary", markdown=summary_markdown(summary),
                             description="Gate decision and where the model went")
    record_run(fingerprint, summary)
    return summary


UNCHANGED_NOTE = ("# Nothing to do\n\nThe table (fingerprint `{data_fingerprint}`) and the "
                  "configuration are those of the last finished run: no training. Its model: "
                  "`{destination}`.")


def summary_markdown(summary: dict) -> str:
    verdict = "**promoted**" if summary["promoted"] else "**not promoted**"
    lines = [
        f"# Training run: {verdict}",
        "",
        "| | accuracy |", "|---|---|",
        f"| labeled-only baseline | {summary['baseline_accuracy']:.4f} |",
        f"| chosen round ({summary['chosen_round']}) | {summary['test_accuracy']:.4f} |",
        "", f"Base estimator: `{summary['base_estimator']}`; guard: {summary['guard']} "
        f"(helped {summary['guard_helped_rows']}, harmed {summary['guard_harmed_rows']} "
        "held-out labeled rows).",
    ]
    if summary["champion_accuracy"] is not None:
        lines.append(f"| champion {summary['champion_tag']} | {summary['champion_accuracy']:.4f} |")
    lines += ["", "## Columns", *[f"- {r}" for r in summary["column_roles"]]]
    lines += ["", "## Gate", *[f"- {r}" for r in summary["gate_reasons"]], "",
              f"Model: `{summary['destination']}`", "",
              f"Reports: `{REPORTS_DIR}/rounds.png`, `{REPORTS_DIR}/confusion_matrix.png`, "
              f"Data Docs under `{REPORTS_DIR}/`; metrics in `{METRICS_DIR}/metrics.json`."]
    return "\n".join(lines)


__all__ = ["train_pipeline"]
