"""A real ``bentoml serve`` never unpickles a model this installation did not sign: a
tampered artifact and a dropped foreign entry are refused with one log line each, and the
newest verified production model serves."""

from __future__ import annotations

import time

import httpx
import pytest
from serving_fixtures import (
    digits_model,
    free_port,
    promote_model,
    start_server,
    stop_server,
    wait_ready,
)

from selftrain.schema import MODEL_FILE

pytestmark = pytest.mark.slow


def test_server_skips_tampered_and_foreign_models_and_serves_one_once_it_is_repaired(
        tmp_path, monkeypatch):
    """At start the newest production model that verifies serves: a tampered one, a foreign
    one and a newer one whose file is broken are each refused with one log line. Once that
    file is restored, the running server verifies it again and swaps it in, logging the
    swap. (One server for both stories: a server start costs ~10 s.)"""
    home = tmp_path / "bentoml"
    model, _ = digits_model(n_estimators=5)
    good = promote_model(home, model)
    tampered = promote_model(home, model)
    with monkeypatch.context() as patch:  # another installation's key signs this one
        patch.setenv("SELFTRAIN_SIGNING_KEY_FILE", str(tmp_path / "foreign.key"))
        foreign = promote_model(home, model)
    repaired = promote_model(home, model)
    name, version = tampered.split(":")
    with open(home / "models" / name / version / MODEL_FILE, "ab") as fh:
        fh.write(b"\x00")  # edited in place after packaging
    artifact = home / "models" / repaired.replace(":", "/") / MODEL_FILE
    original = artifact.read_bytes()
    artifact.write_bytes(original + b"\x00")
    port, log = free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    proc = start_server(home, port, log, SELFTRAIN_RELOAD_SECONDS="1")
    try:
        wait_ready(proc, url, log)
        assert httpx.get(f"{url}/metadata", timeout=30).json()["model_tag"] == good
        artifact.write_bytes(original)
        deadline = time.monotonic() + 60
        while f"model swap: {good} -> {repaired}" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        assert httpx.get(f"{url}/metadata", timeout=30).json()["model_tag"] == repaired
    finally:
        stop_server(proc)
    text = log.read_text()
    assert f"model {foreign}: integrity record not signed by this installation's key" in text
    assert f"model {tampered}: {MODEL_FILE} does not match its recorded SHA-256" in text
    assert f"model {repaired}: {MODEL_FILE} does not match its recorded SHA-256" in text
    assert "Traceback" not in text


def test_server_skips_unreadable_store_entries_instead_of_finding_the_store_empty(
        tmp_path, monkeypatch):
    """Half-written entries (an empty folder, a truncated model.yaml) made production after a
    good model (``bentoml.models.list`` raises on them): the server logs each once and
    serves the good one, the production model before them."""
    from selftrain.lines import record_promotion

    home = tmp_path / "bentoml"
    model, _ = digits_model(n_estimators=5)
    good = promote_model(home, model)
    name = good.split(":")[0]
    line = home / "models" / name
    (line / "zzpartialempty1").mkdir()
    (line / "zzpartialyaml02").mkdir()
    (line / "zzpartialyaml02" / "model.yaml").write_text(f"name: {name}\nversion: [")
    monkeypatch.setenv("BENTOML_HOME", str(home))
    for partial in ("zzpartialempty1", "zzpartialyaml02"):
        record_promotion(name, f"{name}:{partial}", by="test")
    port, log = free_port(), tmp_path / "server.log"
    proc = start_server(home, port, log, SELFTRAIN_RELOAD_SECONDS="1")
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", log)
        time.sleep(2.5)  # two reload checks
        meta = httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=30).json()
        assert meta["model_tag"] == good
    finally:
        stop_server(proc)
    text = log.read_text()
    for partial in ("zzpartialempty1", "zzpartialyaml02"):
        said = text.count(f"skipping unreadable model store entry {good.split(':')[0]}:{partial}")
        assert 1 <= said <= 2  # once per process (bentoml's CLI, the worker), not per check
    assert "Traceback" not in text
