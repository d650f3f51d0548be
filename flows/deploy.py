"""The deployment ``train-pipeline/nightly``: the training flow on a cron schedule, with the
configuration from ``params.yaml`` as its default (and UI-editable) parameters.

Nothing that arrives over the network may lower a gate or widen a path: the editable
``config`` leaves out the gate's thresholds and ``data.roots`` (both come from the params
file of the machine serving the deployment, at run time), and a run whose ``data.path``
lies outside ``data.roots`` fails before its first task, naming the path and the roots.

``serve_deployment`` registers it with whatever Prefect API ``PREFECT_API_URL`` names and
then polls for its runs, scheduled or triggered from the UI, running each in a
subprocess of this process, in this working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow

from flows.defaults import DEPLOYMENT_NAME, NIGHTLY_CRON, TIMEZONE
from selftrain.config import (
    LOCKED_KEYS,
    PARAMS_FILE,
    check_data_root,
    editable_model,
    load_config,
    with_locked_settings,
)

TAGS = ["selftrain", "training"]
DESCRIPTION = (
    "Self-train a classifier on `data.path` and promote it to the BentoML model store if it "
    "passes the gate. Edit `config` to change the table (under `data.roots`), the masking or "
    "the self-training loop for one run; the defaults come from `params.yaml`, and the gate's "
    "thresholds only from there. Watch the "
    "`self-training-rounds` table and the `train-summary` markdown in the run's artifacts."
)


PARAMS_ENV = "SELFTRAIN_DEPLOY_PARAMS"  # the params file of the serving process, for its runs
EditableConfig = editable_model()


@flow(name="train-pipeline", description="Self-train a classifier and promote it if it earns it")
def train_deployment(
    config: EditableConfig = EditableConfig(),  # noqa: B008 - Prefect renders it as a form
    force: bool = False,
) -> dict:
    """A deployment's run: the editable parameters, with the gate and the data roots from
    the params file; refused before any task when ``data.path`` leaves the data roots."""
    from flows.train import train_pipeline

    params_path = os.environ.get(PARAMS_ENV) or None
    full = with_locked_settings(config, load_config(params_path))
    check_data_root(full)
    return train_pipeline.fn(full, params_path, force, wait=True)


class NoPrefectServer(RuntimeError):
    """``PREFECT_API_URL`` is unset: a served deployment needs a server that outlives it;
    or the server refuses this client's credentials. The message says which."""


def deployment_parameters(params_path: str | Path | None = PARAMS_FILE) -> dict[str, Any]:
    """The flow's default parameters: the configuration but its locked keys as JSON, so the
    UI shows the same nested form ``params.yaml`` has. ``None`` gives the defaults; a
    missing file or a wrong value raises ``ConfigError`` before anything is registered."""
    exclude: dict = {}
    for key in LOCKED_KEYS:
        section, _, name = key.partition(".")
        exclude[section] = {name} if name else True
    config = load_config(params_path).model_dump(mode="json", exclude=exclude)
    return {"config": EditableConfig.model_validate(config).model_dump(mode="json")}


def serve_deployment(
    name: str = DEPLOYMENT_NAME,
    cron: str = NIGHTLY_CRON,
    timezone: str = TIMEZONE,
    params_path: str | Path | None = PARAMS_FILE,
    limit: int = 1,
) -> None:
    """Register the deployment and run its flow runs until interrupted.

    ``limit`` runs at a time (default 1: runs share the workspace and the model store, so
    a second one waits). Parameters are checked against the flow's schema by the server
    when a run is created (``enforce_parameter_schema``): a bad value is refused with 409
    and no run exists; the flow re-validates the config with pydantic when it starts."""
    from prefect import serve
    from prefect.flows import EntrypointType
    from prefect.schedules import Cron

    require_api_url()
    parameters = deployment_parameters(params_path)
    if params_path is not None:  # the runs read the gate and the data roots from it
        os.environ[PARAMS_ENV] = str(Path(params_path).resolve())
    deployment = train_deployment.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters,
        description=DESCRIPTION,
        tags=TAGS,
        enforce_parameter_schema=True,
        # A module path works from any working directory (the project is installed).
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    # Not ``train_pipeline.serve()``: that runs each flow run from a cloudpickled copy of
    # the function, whose string annotations (``from __future__ import annotations``) no
    # longer resolve, and every run fails parameter validation. ``serve(deployment)``
    # starts ``python -m prefect.engine``, which imports ``flows.deploy`` afresh per run.
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        serve(deployment, limit=limit)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code not in (401, 403):
            raise
        raise NoPrefectServer(
            f"the Prefect server at {require_api_url()} refused this client "
            f"({exc.response.status_code}): give it the server's credentials in "
            "PREFECT_API_AUTH_STRING, or point SELFTRAIN_PREFECT_AUTH_FILE at the file "
            "`selftrain server` wrote (default ~/.config/selftrain/prefect-auth)") from None


def require_api_url() -> str:
    """The API the deployment registers with; refuse the temporary ephemeral server."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise NoPrefectServer(
            "PREFECT_API_URL is not set: start a server (`make server`) and point to it, e.g. "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
        )
    return url


__all__ = ["DEPLOYMENT_NAME", "NIGHTLY_CRON", "deployment_parameters", "serve_deployment",
           "train_deployment"]
