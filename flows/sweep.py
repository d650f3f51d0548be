"""The sweep: candidates for a grid of configurations, trained in parallel on Dask.

Each candidate is the training flow's own round loop (``run_rounds``) and evaluation in
one task, so a Dask worker runs a whole candidate; the rounds of one candidate stay
sequential. The table is validated once, each candidate is masked in the flow's process
(cheap, and its arrays land in its own workspace), and only the candidate with the best
VALIDATION accuracy goes through the same gate and packaging as ``train_pipeline``.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect_dask import DaskTaskRunner
from pydantic import ValidationError

from flows.defaults import DEFAULT_GRID, DEFAULT_WORKERS
from selftrain.config import (
    ConfigError,
    EstimatorName,
    PipelineConfig,
    format_validation_error,
)
from selftrain.schema import load_model, save_model
from tasks.evaluate import evaluate_rounds
from tasks.fingerprint import RunFingerprint, fingerprint_run
from tasks.lineage import collect_lineage
from tasks.mask import PreparedData, mask_table
from tasks.promote import promote_candidate
from tasks.self_train import guard_rounds, round_model, run_rounds
from tasks.sweep_report import pick_best, report_sweep
from tasks.validate import validate_table
from tasks.workspace import METRICS_DIR, REPORTS_DIR, WORK_DIR


def dask_runner(workers: int = DEFAULT_WORKERS, address: str | None = None) -> DaskTaskRunner:
    """Connect to the Dask scheduler at ``address``, or start a loopback ``LocalCluster``
    of ``workers`` single-threaded processes for the length of the flow run."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers, "threads_per_worker": 1, "processes": True,
        "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0",
    })


@flow(name="sweep", description="Train a grid of candidates on Dask; promote the best",
      task_runner=dask_runner())
def sweep(
    config: PipelineConfig = PipelineConfig(),  # noqa: B008 - Prefect renders it as a form
    base_estimators: list[EstimatorName] = DEFAULT_GRID["base_estimators"],
    thresholds: list[float] = DEFAULT_GRID["thresholds"],
    labeled_fractions: list[float] = DEFAULT_GRID["labeled_fractions"],
) -> dict:
    """One candidate per (estimator, threshold, labeled fraction); thresholds switch the
    candidates to ``criterion=threshold``. Returns every candidate's scores, the best one
    (by validation accuracy, never test) and the gate's decision on it."""
    candidates = grid_configs(config, base_estimators, thresholds, labeled_fractions)
    fingerprint = fingerprint_run(config)
    table = validate_table(config, REPORTS_DIR, fingerprint.table_sha256)
    work, out = Path(WORK_DIR).resolve(), Path(REPORTS_DIR).resolve() / "sweep"
    prepared = {name: mask_table(table, cfg, str(work)) for name, cfg in candidates.items()}
    del table
    futures = {name: train_candidate.submit(name, data, candidates[name], str(out / data.key))
               for name, data in prepared.items()}
    rows = [collect_candidate(name, future, candidates[name]) for name, future in futures.items()]
    best = pick_best(rows)
    summary = {"candidates": rows, "best": best["name"]}
    summary |= promote_best(prepared[best["name"]], candidates[best["name"]], best, fingerprint)
    report_sweep(rows, summary, REPORTS_DIR, METRICS_DIR)
    return summary


def run_sweep(config: PipelineConfig, grid: dict, workers: int = DEFAULT_WORKERS,
              address: str | None = None) -> dict:
    """The sweep on ``workers`` local processes or the cluster at ``address``."""
    with shared_api():
        return sweep.with_options(task_runner=dask_runner(workers, address))(config, **grid)


@task(name="train-candidate", task_run_name="candidate-{name}", cache_policy=NONE)
def train_candidate(name: str, data: PreparedData, config: PipelineConfig, out_dir: str) -> dict:
    """The training flow's rounds and evaluation for one configuration, in a Dask worker.
    ``out_dir`` is absolute: a worker's working directory is not the flow's. The chosen
    round's model is saved there (it is in this worker's memory), so promoting it does
    not refit it in the flow's process; only a path travels back."""
    start = time.perf_counter()
    verdict = guard_rounds(data, config)
    records, chosen = run_rounds(data, config, verdict)
    metrics = evaluate_rounds(records, chosen, verdict, data, out_dir, out_dir)
    model_dir = Path(out_dir) / "model"
    model = data.served_model(round_model(data, config, chosen, verdict["base_estimator"]),
                              config)
    record = save_model(model_dir, model, data.schema)
    return {"metrics": metrics, "model_dir": str(model_dir), "integrity": record,
            "seconds": time.perf_counter() - start, "pid": os.getpid()}


def grid_configs(config: PipelineConfig, base_estimators: list[str], thresholds: list[float],
                 labeled_fractions: list[float]) -> dict[str, PipelineConfig]:
    """``name -> configuration`` for every grid point, duplicates dropped (two candidates
    with one configuration would share a workspace). Bad values raise ``ConfigError``."""
    axes = {"base_estimators": base_estimators, "thresholds": thresholds,
            "labeled_fractions": labeled_fractions}
    for axis, values in axes.items():
        if not values:
            raise ConfigError(f"sweep grid: {axis} is empty; give at least one value")
    if config.split.validation_size <= 0:
        raise ConfigError("sweep: split.validation_size must be > 0, the best candidate "
                          "is chosen on the validation split")
    out: dict[str, PipelineConfig] = {}
    for estimator in dict.fromkeys(base_estimators):
        for threshold in dict.fromkeys(thresholds):
            for fraction in dict.fromkeys(labeled_fractions):
                raw = config.model_dump(mode="json")
                raw["self_training"] |= {"base_estimator": estimator, "criterion": "threshold",
                                         "threshold": threshold}
                raw["masking"]["labeled_fraction"] = fraction
                try:
                    cfg = PipelineConfig.model_validate(raw)
                except ValidationError as exc:
                    raise ConfigError(format_validation_error(exc, source="sweep grid")) from None
                out[f"{estimator}-t{threshold:g}-f{fraction:g}"] = cfg
    return out


def collect_candidate(name: str, future, config: PipelineConfig) -> dict:
    """One row of the report; a failed candidate is reported with its error, not fatal."""
    st = config.self_training
    row = {"name": name, "base_estimator": st.base_estimator, "threshold": st.threshold,
           "labeled_fraction": config.masking.labeled_fraction}
    try:
        result = future.result()
    except Exception as exc:  # one broken candidate must not sink the sweep
        return row | {"error": f"{type(exc).__name__}: {exc}"}
    keys = ("metrics", "model_dir", "integrity", "seconds", "pid")
    return row | {key: result[key] for key in keys} | {"error": None}


def promote_best(data: PreparedData, config: PipelineConfig, best: dict,
                 fingerprint: RunFingerprint) -> dict:
    """The same gate and packaging as ``train_pipeline``, for the chosen candidate only."""
    metrics, lineage = best["metrics"], collect_lineage(config, fingerprint, None)
    model, _ = load_model(best["model_dir"], best["integrity"], f"candidate {best['name']}")
    return promote_candidate(model, data, config, metrics, lineage)


@contextmanager
def shared_api():
    """Dask workers are other processes: without ``PREFECT_API_URL`` each would start an
    ephemeral server of its own. Start one here; its URL travels in the task context."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


__all__ = ["dask_runner", "run_sweep", "sweep"]
