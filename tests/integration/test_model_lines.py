"""Model lines: two tables of different schemas train onto lines of their own (named after
their tables), are served side by side by two real servers, each following its own line;
``selftrain models`` lists both and ``selftrain rollback`` / ``promote`` switch one line's
production model, which its server follows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import free_port, start_server, stop_server, wait_ready
from test_real_tables import churn_table

pytestmark = pytest.mark.slow
QUICK = ["self_training.max_rounds=2", "self_training.teacher=null", "gate.min_gain=-1",
         "gate.max_regression=1"]
CHURN = ["data.path=data/raw/churn.csv", "data.id_column=customer",
         "data.label_column=churned"]


def _run(overrides: list[str]) -> dict:
    from flows.train import train_pipeline
    from selftrain.config import load_config

    return train_pipeline(load_config(None, [*QUICK, *overrides]))


def _cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)


def _served(url: str) -> dict:
    return httpx.get(f"{url}/metadata", timeout=30).json()


def _wait_served(url: str, tag: str) -> None:
    deadline = time.monotonic() + 60
    while _served(url)["model_tag"] != tag:
        assert time.monotonic() < deadline, f"the server never followed its line to {tag}"
        time.sleep(0.5)


def test_two_tables_live_on_their_own_lines_served_side_by_side(prefect_api, workspace,
                                                                 tmp_path_factory):
    churn_table().to_csv(workspace / "data/raw/churn.csv", index=False)
    digits_1 = _run([])
    churn = _run(CHURN)
    assert digits_1["line"] == "digits" and churn["line"] == "churn"
    assert digits_1["promoted"] and churn["promoted"], churn["gate_reasons"]
    assert not str(churn["champion_tag"]).startswith("digits:")  # never met digits' champion
    digits_2 = _run(["seed=1"])
    assert digits_2["promoted"] and digits_2["champion_tag"] == digits_1["destination"]

    # the churn table named into the digits line is refused, and told how to start its own
    wrong = _run([*CHURN, "project=digits"])
    assert not wrong["promoted"]
    assert "Start a new line for this problem" in wrong["gate_reasons"][0]

    listing = _cli(workspace, "models")
    assert listing.returncode == 0, listing.stderr
    for tag in (digits_1["destination"], digits_2["destination"], churn["destination"]):
        assert tag.partition(":")[2] in listing.stdout

    home, servers = Path(os.environ["BENTOML_HOME"]), []
    try:
        urls = {}
        for line in ("digits", "churn"):
            config = workspace / f"{line}.yaml"
            config.write_text(f"project: {line}\n")
            port, log = free_port(), tmp_path_factory.mktemp(line) / "server.log"
            servers.append(start_server(home, port, log, SELFTRAIN_CONFIG=str(config),
                                        SELFTRAIN_RELOAD_SECONDS="1"))
            urls[line] = f"http://127.0.0.1:{port}"
            wait_ready(servers[-1], urls[line], log)
        assert _served(urls["digits"])["model_tag"] == digits_2["destination"]
        assert _served(urls["churn"])["model_tag"] == churn["destination"]
        assert "city" in _served(urls["churn"])["feature_names"]

        back = _cli(workspace, "rollback", "--line", "digits")
        assert back.returncode == 0, back.stderr
        assert f"{digits_2['destination']} -> {digits_1['destination']}" in back.stderr
        _wait_served(urls["digits"], digits_1["destination"])
        assert _served(urls["churn"])["model_tag"] == churn["destination"]

        again = _cli(workspace, "promote", digits_2["destination"])
        assert again.returncode == 0, again.stderr
        _wait_served(urls["digits"], digits_2["destination"])
        foreign = _cli(workspace, "promote", churn["destination"].replace("churn:", "digits:"))
        assert foreign.returncode == 1 and "Traceback" not in foreign.stderr

        # partial entries (an empty folder; files without model.yaml) hide nothing
        (home / "models/digits/emptyfolder").mkdir()
        (home / "models/digits/nomodelyaml").mkdir()
        (home / "models/digits/nomodelyaml/model.skops").write_bytes(b"PK\x03")
        listing = _cli(workspace, "models", "--line", "digits")
        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.count("unreadable") == 2, listing.stdout
        assert "production" in listing.stdout
        time.sleep(2)  # two reload checks
        assert _served(urls["digits"])["model_tag"] == digits_2["destination"]
        for broken in ("emptyfolder", "nomodelyaml"):
            shutil.rmtree(home / "models/digits" / broken)
    finally:
        for server in servers:
            stop_server(server)
    history = (home / "selftrain-lines/digits.jsonl").read_text()
    assert '"by":"selftrain rollback"' in history and '"by":"selftrain promote"' in history
