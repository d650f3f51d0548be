"""``bentoml build`` packs the service and the promoted model into a Bento that serves
on its own: exported, imported into an empty store, served from outside the project."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from serving_fixtures import (
    PROJECT_ROOT,
    QUIET,
    digits_model,
    free_port,
    promote_model,
    stop_server,
    wait_ready,
)

pytestmark = pytest.mark.slow
BENTOML = str(Path(sys.executable).with_name("bentoml"))


def bentoml_cli(home: Path, *args: str, cwd: Path = PROJECT_ROOT) -> str:
    env = {**os.environ, **QUIET, "BENTOML_HOME": str(home)}
    done = subprocess.run(
        [BENTOML, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(store home, bento tag, model tag, model, X): one build for the module."""
    home = tmp_path_factory.mktemp("build_home")
    model, X = digits_model(n_estimators=10)
    model_tag = promote_model(home, model)
    out = bentoml_cli(home, "build", "--output", "tag")
    bento_tag = out.strip().splitlines()[-1].removeprefix("__tag__:")
    return home, bento_tag, model_tag, model, X


def test_bento_holds_the_model_the_service_and_no_training_stack(built):
    home, bento_tag, model_tag, _, _ = built
    name, version = bento_tag.split(":")
    bento = home / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert [m["tag"] for m in info["services"][0]["models"]] == [model_tag]
    assert (bento / "src/serving/service.py").is_file()
    assert (bento / "src/selftrain/schema.py").is_file()
    for left_out in ("tests", "benchmarks", "data", "flows", "tasks"):
        assert not (bento / "src" / left_out).exists(), left_out
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert "scikit-learn" in requirements
    assert "prefect" not in requirements and "great-expectations" not in requirements


def test_exported_bento_serves_its_own_model_from_an_empty_store(built, tmp_path):
    home, bento_tag, model_tag, model, X = built
    archive = tmp_path / "selftrain.bento"
    bentoml_cli(home, "export", bento_tag, str(archive))
    fresh = tmp_path / "fresh_home"
    bentoml_cli(fresh, "import", str(archive), cwd=tmp_path)
    # A newer promotion in the serving store: the Bento still serves what it packed.
    other, _ = digits_model(n_estimators=5)
    newer_tag = promote_model(fresh, other)

    port, log = free_port(), tmp_path / "bento.log"
    env = {**os.environ, **QUIET, "BENTOML_HOME": str(fresh), "SELFTRAIN_RELOAD_SECONDS": "1"}
    env.pop("PYTHONPATH", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [BENTOML, "serve", bento_tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        time.sleep(2.5)  # two reload intervals: a reload, were it on, would have happened
        body = httpx.post(f"{url}/predict", json=X[:20].tolist(), timeout=30).json()
        assert body["model_tag"] == model_tag != newer_tag
        assert body["labels"] == model.predict(X[:20]).tolist()
        assert httpx.get(f"{url}/metadata", timeout=30).json()["model_tag"] == model_tag
    finally:
        stop_server(proc)
    assert "model swap" not in log.read_text()
