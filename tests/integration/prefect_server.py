"""A real Prefect server started by ``selftrain server`` (credentials, CORS for its own UI,
CSRF on) on a free loopback port, and ``selftrain deploy`` serving the nightly deployment
against it from a workspace of its own; both read the credentials from one secret file.

One server and one serving process are shared by ``test_deploy.py`` and ``test_ui.py``
(started on first use, stopped by PID when the session ends): each costs ~20 s here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from processes import free_port, stop_process_group

from selftrain.config import dump_config, load_config
from selftrain.offline import TELEMETRY_OFF

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SELFTRAIN = Path(sys.executable).with_name("selftrain")
CRON = "15 3 * * *"  # not the default: proves the schedule is configurable
# The workspace's params.yaml: the project's, made quick and sure to promote.
PARAMS = ["self_training.max_rounds=2", "gate.min_accuracy=0", "gate.min_gain=-1",
          "gate.max_regression=1"]
QUIET = {**TELEMETRY_OFF, "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
         "PREFECT_LOGGING_LEVEL": "INFO"}


@dataclass
class ServedDeployment:
    api_url: str
    ui_url: str
    workspace: Path
    bentoml_home: Path
    logs: Path
    auth: str  # user:password of the server's basic auth

    def log_tail(self, lines: int = 40) -> str:
        """The end of both processes' logs, for assertion messages."""
        out = []
        for name in ("server.log", "deploy.log"):
            text = (self.logs / name).read_text(errors="replace").splitlines()
            out += [f"--- {name}", *text[-lines:]]
        return "\n".join(out)


_SHARED: ServedDeployment | None = None


def served_deployment(request, tmp_path_factory) -> ServedDeployment:
    """Start the server and the deployment once per session; later calls reuse them."""
    global _SHARED
    if _SHARED is None:
        root = tmp_path_factory.mktemp("prefect-server")
        processes: list[subprocess.Popen] = []
        request.config.add_cleanup(lambda: [stop_process_group(p) for p in reversed(processes)])
        _SHARED = start_all(root, processes)
    return _SHARED


def start_all(root: Path, processes: list[subprocess.Popen]) -> ServedDeployment:
    port = free_port()
    api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    logs, workspace, bento = root / "logs", root / "workspace", root / "bentoml"
    for path in (logs, workspace, bento):
        path.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BENTOML_"))}
    secret = {"SELFTRAIN_PREFECT_AUTH_FILE": str(root / "prefect-auth")}
    server_env = base | QUIET | secret | {"PREFECT_HOME": str(root / "server-home")}
    processes.append(spawn([str(SELFTRAIN), "server", "--port", str(port)], server_env, root,
                           logs / "server.log"))
    wait_for(lambda: (root / "prefect-auth").exists(), 60, "the server's secret file")
    auth = (root / "prefect-auth").read_text().strip()
    wait_for(lambda: _healthy(api_url, auth), 180, "the Prefect server to answer /health")
    subprocess.run([str(SELFTRAIN), "prepare", "data/raw/digits.csv"], cwd=workspace,
                   env=base | QUIET, check=True, capture_output=True)
    dump_config(load_config(PROJECT_ROOT / "params.yaml", PARAMS), workspace / "params.yaml")
    deploy_env = base | QUIET | secret | {"PREFECT_API_URL": api_url,
                                          "BENTOML_HOME": str(bento),
                                          "PREFECT_HOME": str(root / "client-home")}
    processes.append(spawn([str(SELFTRAIN), "deploy", "--cron", CRON], deploy_env, workspace,
                           logs / "deploy.log"))
    served = ServedDeployment(api_url, ui_url, workspace, bento, logs, auth)
    wait_for(lambda: _deployment_ready(api_url, auth), 180,
             f"the deployment to be served\n{served.log_tail()}")
    return served


def spawn(argv: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    """Its own process group, so stopping it by PID also stops the flow runs it started."""
    exe = argv[0] if os.path.isabs(argv[0]) else str(Path(sys.executable).with_name(argv[0]))
    with log.open("wb") as out:
        return subprocess.Popen([exe, *argv[1:]], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def _healthy(api_url: str, auth: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=5,
                         auth=tuple(auth.split(":", 1))).status_code == 200
    except httpx.HTTPError:
        return False


def _deployment_ready(api_url: str, auth: str) -> bool:
    """READY once the runner of ``selftrain deploy`` polls for its runs."""
    try:
        deployment = call_api(api_url, lambda c: c.read_deployment_by_name(
            "train-pipeline/nightly"), auth)
    except Exception:  # not registered yet
        return False
    return str(deployment.status.value).upper() == "READY"


def read_deployment(api_url: str):
    return call_api(api_url, lambda c: c.read_deployment_by_name("train-pipeline/nightly"))


def call_api(api_url: str, call, auth: str | None = None):
    """``call(client)`` with a synchronous, authenticated client of the server at
    ``api_url`` (sync: the playwright test already runs an event loop in this thread)."""
    from prefect.client.orchestration import SyncPrefectClient

    auth = auth or (_SHARED.auth if _SHARED is not None else None)
    with SyncPrefectClient(api_url, auth_string=auth) as client:
        return call(client)
