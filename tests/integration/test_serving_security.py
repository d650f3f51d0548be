"""Production safety of the server, tested through a real ``bentoml serve`` on a loopback
port: bearer-token auth, no echo of client input, quiet client disconnects, no absolute
paths in /metadata, the concurrency cap, and ``selftrain serve`` stopping its server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest
from serving_fixtures import (
    FEATURES,
    PROJECT_ROOT,
    QUIET,
    TOKEN,
    free_port,
    stop_server,
    wait_ready,
)

from serving.auth import TOKEN_ENV, TOKEN_FILE_ENV, AuthConfigError, api_token

pytestmark = pytest.mark.slow

ROW = [1.0] * 64
MARKER = "Z" * 5000  # client input no message may repeat beyond 40 characters
ECHOED = "Z" * 41


@pytest.fixture(scope="module")
def trained(digits_server):
    return digits_server.model, digits_server.X


@pytest.fixture(scope="module")
def store(digits_server):
    """(home, tag): the shared server's store, whose model's lineage holds absolute paths
    (serving_fixtures.SHARED_FACTS)."""
    return digits_server.home, digits_server.tag


@pytest.fixture(scope="module")
def served(digits_server):
    """(url, log) of the shared server (conftest.py), which takes its token from a file."""
    return digits_server.url, digits_server.log


@pytest.fixture
def authed(served):
    with httpx.Client(base_url=served[0], timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def anon(served):
    with httpx.Client(base_url=served[0], timeout=30) as client:
        yield client


# -- bearer token ------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/predict"), ("POST", "/predict_proba"), ("GET", "/metadata"),
    ("GET", "/metrics"), ("GET", "/"), ("GET", "/docs.json"), ("GET", "/schema.json"),
    ("GET", "/no-such-path"),
]


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text[:300])
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"].startswith("missing or invalid bearer token")
    assert TOKEN not in response.text


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[p for _, p in PROTECTED])
def test_every_path_but_the_probes_needs_the_token(anon, method, path):
    assert_refused(anon.request(method, path, json=[ROW]))


def test_probes_answer_without_a_token(anon):
    for probe in ("/livez", "/readyz"):
        assert anon.get(probe).status_code == 200


WRONG_AUTHORIZATION = {
    "another token": [("Authorization", f"Bearer {secrets.token_urlsafe(32)}")],
    "token plus a character": [("Authorization", f"Bearer {TOKEN}x")],
    "token minus a character": [("Authorization", f"Bearer {TOKEN[:-1]}")],
    "other scheme": [("Authorization", f"Basic {TOKEN}")],
    "no scheme": [("Authorization", TOKEN)],
    "scheme only": [("Authorization", "Bearer")],
    "token in another header": [("X-Api-Token", TOKEN)],
    "two authorization headers": [("Authorization", "Bearer nope"),
                                  ("Authorization", f"Bearer {TOKEN}")],
}


@pytest.mark.parametrize("case", list(WRONG_AUTHORIZATION), ids=list(WRONG_AUTHORIZATION))
def test_a_wrong_or_malformed_token_is_refused(anon, case):
    for method, path in PROTECTED[:4]:
        response = anon.request(method, path, json=[ROW], headers=WRONG_AUTHORIZATION[case])
        assert_refused(response)


def test_the_token_opens_the_routes_and_metrics(authed, trained, store):
    model, X = trained
    response = authed.post("/predict", json=X[:5].tolist())
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == model.predict(X[:5]).tolist()
    assert response.json()["model_tag"] == store[1]
    assert authed.post("/predict_proba", json=X[:5].tolist()).status_code == 200
    assert authed.get("/metadata").status_code == 200
    lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive
    assert authed.get("/metadata", headers=lower).status_code == 200
    assert 'endpoint="/predict",http_response_code="200"' in authed.get("/metrics").text


def test_the_token_is_checked_before_the_body_is_read(anon):
    huge = b"[" + b"1," * 2_000_000 + b"1]"
    assert_refused(anon.post("/predict", content=huge))
    assert_refused(anon.post("/predict", content=b"[[1, 2,"))


def test_token_settings(tmp_path):
    assert api_token({}) is None
    assert api_token({TOKEN_ENV: f"  {TOKEN}\n"}) == TOKEN
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    assert api_token({TOKEN_FILE_ENV: str(tmp_path / "token")}) == TOKEN
    bad = {
        "empty": {TOKEN_ENV: ""},
        "too short": {TOKEN_ENV: "short-token"},
        "spaces": {TOKEN_ENV: "a token with spaces in it"},
        "non-ASCII": {TOKEN_ENV: "é" * 20},
        "both": {TOKEN_ENV: TOKEN, TOKEN_FILE_ENV: str(tmp_path / "token")},
        "missing file": {TOKEN_FILE_ENV: str(tmp_path / "absent")},
        "directory": {TOKEN_FILE_ENV: str(tmp_path)},
    }
    for case, environ in bad.items():
        with pytest.raises(AuthConfigError):
            api_token(environ)
            pytest.fail(case)


@pytest.mark.parametrize(
    "setting",
    [{TOKEN_FILE_ENV: "/nonexistent/selftrain-token"}, {TOKEN_ENV: "short"}],
    ids=["missing token file", "short token"],
)
def test_bad_token_settings_stop_the_server_before_it_starts(store, setting):
    from serving.run import server_command

    env = {**os.environ, **QUIET, "BENTOML_HOME": str(store[0]), **setting}
    env.pop(TOKEN_FILE_ENV if TOKEN_ENV in setting else TOKEN_ENV, None)
    # Its own process group: should it start after all, the whole server is stopped.
    proc = subprocess.Popen(server_command(free_port()), cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        stop_server(proc)
    assert proc.returncode != 0
    assert "selftrain serve: cannot start: " in output
    assert "API token" in output
    assert "Traceback" not in output


def test_serving_settings_come_from_the_model_not_the_working_directory(authed):
    """The model was trained with serving.max_batch_rows=100; params.yaml here says 1000."""
    assert authed.post("/predict", json=[ROW] * 100).status_code == 200
    refused = authed.post("/predict", json=[ROW] * 101)
    assert refused.status_code == 422
    assert "101 rows exceed the limit of 100 rows" in refused.json()["error"]


# -- what answers and logs may contain ---------------------------------------------------


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def test_metadata_holds_no_absolute_paths(authed):
    body = authed.get("/metadata").json()
    for text in strings_in(body):
        assert not text.startswith(("/", "file:/")), text
        assert not re.match(r"^[A-Za-z]:[\\/]", text), text
    assert body["data_path"] == "digits.csv"  # outside the project: the file name only
    assert body["params_path"] == "params.yaml"  # inside: relative to the project
    assert body["dvc_source"] == "dvc.lock"
    assert body["config"]["data"] == {"path": "digits.csv", "label": "target"}
    assert body["predictor"]["kind"] == "sklearn"
    assert body["config"]["copies"] == ["digits.csv", "data/raw/digits.csv"]
    assert body["test_accuracy"] == 0.97
    text = json.dumps(body)
    for private in ("secret-project", "alice", str(PROJECT_ROOT)):
        assert private not in text


ECHO_CASES = {
    "long unknown field": [{**dict(zip(FEATURES, ROW, strict=True)), MARKER: 1}],
    "long string value": [[MARKER] + ROW[1:]],
    "long key beside rows": {"rows": [ROW], MARKER: 1},
    "malformed JSON after a long string": f'[["{MARKER}", 1,',
    "long bare word": MARKER,
    "long number": "[[" + "9" * 5000 + "]]",
}


@pytest.mark.parametrize("case", list(ECHO_CASES), ids=list(ECHO_CASES))
def test_error_messages_repeat_at_most_40_characters_of_input(authed, served, case):
    payload = ECHO_CASES[case]
    content = payload if isinstance(payload, str) else json.dumps(payload)
    response = authed.post("/predict", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text[:300]
    assert ECHOED not in response.text and "9" * 41 not in response.text
    assert len(response.content) < 2000
    log = served[1].read_text()
    assert ECHOED not in log and "9" * 41 not in log


def raw_request(url: str, head: bytes, body: bytes = b"") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head + body)
    return sock


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def server_errors(client: httpx.Client) -> list[str]:
    """Request counters of 5xx answers above zero (BentoML lists each API route's 500 at 0)."""
    metrics = client.get("/metrics").text
    lines = re.findall(r'[^\n]*request_total\{[^\n]*http_response_code="5\d\d"[^\n]*', metrics)
    return [line for line in lines if float(line.rsplit(" ", 1)[1]) > 0]


def test_a_client_gone_mid_body_gets_no_5xx_and_no_traceback(authed, served):
    url, log = served
    head = (
        "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 200000\r\n\r\n"
    ).encode()
    for body in (b"[[1, 2, 3, " * 100, b""):
        sock = raw_request(url, head, body)
        time.sleep(0.5)
        sock.close()
    assert wait_for(lambda: log.read_text().count("client disconnected after") >= 2, 20)
    text = log.read_text()
    assert "dropped POST /predict: client disconnected after 1100 bytes of the body" in text
    assert "Traceback" not in text and "Exception in ASGI application" not in text
    assert server_errors(authed) == []
    assert 'endpoint="/predict",http_response_code="499"' in authed.get("/metrics").text
    assert authed.post("/predict", json=[ROW]).status_code == 200


def test_requests_beyond_the_concurrency_cap_get_429(authed, served):
    """256 uploads in progress at once (max_concurrency); the next request is refused."""
    url, log = served
    head = (
        "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    before = log.read_text().count("client disconnected after")
    uploads = []
    try:
        for _ in range(256):
            uploads.append(raw_request(url, head, b"[[1, "))
        assert wait_for(lambda: authed.get("/metadata").status_code == 429, 30)
        assert authed.get("/livez").status_code == 200  # probes are never capped
    finally:
        for sock in uploads:
            sock.close()
    assert wait_for(lambda: authed.get("/metadata").status_code == 200, 30)
    assert wait_for(
        lambda: log.read_text().count("client disconnected after") >= before + 256, 30
    )
    assert "Traceback" not in log.read_text()
    assert server_errors(authed) == []


# -- `selftrain serve` stops its server --------------------------------------------------


def answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/livez", timeout=2)
        return True
    except httpx.TransportError:
        return False


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies, dead but not yet reaped, aside)."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def kill_survivors(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running, each then sent SIGKILL (by its own pid)."""
    alive = running(processes)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return alive


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_selftrain_serve_stops_its_server_on_a_signal(store, tmp_path, signum):
    home, _ = store
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **QUIET, "BENTOML_HOME": str(home)}
    env.pop(TOKEN_ENV, None)
    env.pop(TOKEN_FILE_ENV, None)
    command = [str(Path(sys.executable).with_name("selftrain")), "serve", "--port", str(port)]
    with log.open("wb") as out:
        parent = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    family: list[psutil.Process] = []
    try:
        wait_ready(parent, url, log)
        family = psutil.Process(parent.pid).children(recursive=True)
        assert family, "selftrain serve started no server process"
        os.kill(parent.pid, signum)  # the parent only, as a supervisor or Ctrl-C would
        assert wait_for(lambda: not answers(url), 20), "the server still answers"
        parent.wait(timeout=40)
        assert parent.returncode >= 0  # it handled the signal, it was not killed by it
        assert kill_survivors(family) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        kill_survivors(family)
    text = log.read_text()
    assert text.count("API authentication is off") == 1  # no token: said once, at startup
    assert "Traceback" not in text


HOLDOUT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    helper = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    open(sys.argv[1], "w").write(f"{helper.pid}\\n")
    time.sleep(300)
    """
)
SUPERVISOR = textwrap.dedent(
    """
    import sys
    from serving.run import run_server
    sys.exit(run_server([sys.executable, "-c", sys.argv[1], sys.argv[2]], stop_timeout=2))
    """
)


def test_a_server_that_ignores_sigterm_is_killed_with_its_group(tmp_path):
    pids = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", SUPERVISOR, HOLDOUT, str(pids)],
                              cwd=PROJECT_ROOT, start_new_session=True)
    family: list[psutil.Process] = []
    try:
        assert wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"), 30)
        family = psutil.Process(parent.pid).children(recursive=True)
        assert len(family) == 2
        os.kill(parent.pid, signal.SIGTERM)
        parent.wait(timeout=20)
        assert parent.returncode == 128 + signal.SIGKILL
        assert wait_for(lambda: not running(family), 5)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        kill_survivors(family)
