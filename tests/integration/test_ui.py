"""The Prefect UI in headless Chromium: log in with the server's credentials, find the
nightly deployment, start a Custom run with a changed parameter, and the served deployment
runs it to completion.

Chromium is Debian's ``/usr/bin/chromium`` (``make browser`` installs it), driven by
playwright without ``playwright install``. Screenshots stay in the test's tmp dir.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import StateType
from prefect_server import call_api, read_deployment, served_deployment

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEED = 5  # the custom parameter: no other run of the session uses it

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`"),
]


def test_custom_run_from_the_ui_completes(request, tmp_path_factory, tmp_path):
    from playwright.sync_api import sync_playwright

    served = served_deployment(request, tmp_path_factory)
    deployment_id = read_deployment(served.api_url).id
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            log_in(page, served.ui_url, served.auth, tmp_path, shots)
            submit_custom_run(page, served.ui_url, tmp_path, shots)
            run = wait_for_run(served.api_url, deployment_id, timeout=600)
            page.goto(f"{served.ui_url}/runs/flow-run/{run.id}", wait_until="networkidle")
            page.get_by_text("Completed").first.wait_for(timeout=30_000)
            shots.append(snap(page, tmp_path / "3-completed-run.png"))
        finally:
            browser.close()
            print("screenshots:", *shots, sep="\n  ")
    assert run.state_type == StateType.COMPLETED, f"{run.state}\n{served.log_tail()}"
    assert run.parameters["config"]["seed"] == SEED
    assert run.parameters["config"]["self_training"]["max_rounds"] == 2  # the rest: defaults


def log_in(page, ui_url: str, auth: str, out: Path, shots: list[Path]) -> None:
    """The UI asks for the credentials first; a wrong one is refused."""
    page.goto(f"{ui_url}/deployments", wait_until="networkidle", timeout=60_000)
    page.wait_for_url("**/login**", timeout=30_000)
    field = page.get_by_placeholder("admin:pass")
    field.fill(auth + "x")
    page.get_by_role("button", name="Login").click()
    page.wait_for_timeout(2_000)
    assert "/login" in page.url, "the UI let a wrong password in"
    shots.append(snap(page, out / "0-login-refused.png"))
    field.fill(auth)
    page.get_by_role("button", name="Login").click()
    page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)


def submit_custom_run(page, ui_url: str, out: Path, shots: list[Path]) -> None:
    """Deployments -> nightly -> Run -> Custom run -> Seed := SEED -> Submit."""
    page.goto(f"{ui_url}/deployments", wait_until="networkidle", timeout=60_000)
    page.get_by_role("link", name="nightly").click()
    run_button = page.get_by_role("button", name="Run", exact=True)
    run_button.wait_for(timeout=30_000)
    page.get_by_text("train-pipeline").first.wait_for()
    shots.append(snap(page, out / "1-deployment.png"))
    run_button.click()
    page.get_by_text("Custom run").click()
    seed = page.locator("xpath=//label[normalize-space()='Seed (Optional)']/following::input[1]")
    seed.fill(str(SEED))
    shots.append(snap(page, out / "2-custom-run-form.png"))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(lambda url: not url.split("?")[0].endswith("/run"), timeout=30_000)


def wait_for_run(api_url: str, deployment_id, timeout: float):
    """The deployment's run with the custom seed, once it reaches a final state."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        runs = call_api(api_url, lambda c: c.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))))
        mine = [r for r in runs if r.parameters.get("config", {}).get("seed") == SEED]
        assert len(mine) <= 1, "the UI created more than one run"
        run = mine[0] if mine else None
        if run is not None and run.state is not None and run.state.is_final():
            return run
        time.sleep(2)
    raise AssertionError(f"no finished run with seed {SEED} after {timeout:.0f} s: {run}")


def snap(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=False)
    return path
