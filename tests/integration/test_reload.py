"""A running server follows a promotion without dropping a request (serving.reload)."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest
from serving_fixtures import digits_model, free_port, promote_model, start_server, stop_server
from serving_fixtures import wait_ready as wait_server_ready
from sklearn.svm import LinearSVC

from serving.reload import DEFAULT_RELOAD_SECONDS, reload_interval


def test_reload_interval_is_off_when_pinned_and_refuses_nonsense():
    assert reload_interval({}) == DEFAULT_RELOAD_SECONDS
    assert reload_interval({"SELFTRAIN_RELOAD_SECONDS": "2.5"}) == 2.5
    assert reload_interval({"SELFTRAIN_RELOAD_SECONDS": "0"}) is None
    assert reload_interval({"SELFTRAIN_MODEL_TAG": "selftrain-classifier:abc"}) is None
    assert reload_interval({}, pinned=True) is None
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ValueError, match="SELFTRAIN_RELOAD_SECONDS"):
            reload_interval({"SELFTRAIN_RELOAD_SECONDS": bad})


class ClientLoop(threading.Thread):
    """Sends requests back to back until stopped; records (status or error, tag)."""

    def __init__(self, url: str, rows: list) -> None:
        super().__init__(daemon=True)
        self.url, self.rows = url, rows
        self.seen: list[tuple[str, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/predict", json=self.rows)
                    tag = response.json().get("model_tag") if response.is_success else None
                    self.seen.append((str(response.status_code), tag))
                except httpx.HTTPError as exc:
                    self.seen.append((type(exc).__name__, None))


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.slow
def test_promotion_is_served_without_dropping_requests(tmp_path):
    old_model, X = digits_model(n_estimators=10)
    new_model, _ = digits_model(n_estimators=30)
    home = tmp_path / "home"
    old_tag = promote_model(home, old_model)
    port, log = free_port(), tmp_path / "server.log"
    proc = start_server(home, port, log, SELFTRAIN_RELOAD_SECONDS="1")
    url = f"http://127.0.0.1:{port}"
    clients = [ClientLoop(url, X[i : i + size].tolist()) for i, size in enumerate([1, 1, 1, 40])]
    try:
        wait_server_ready(proc, url, log)
        for client in clients:
            client.start()
        # Another line's newer model is none of this server's business.
        other_line = promote_model(home, new_model, name="another-line")
        new_tag = promote_model(home, new_model)  # written while the clients ask
        wait_for(lambda: all(c.seen and c.seen[-1][1] == new_tag for c in clients), 60)
        for client in clients:
            client.stop.set()
            client.join(timeout=30)
        with httpx.Client(base_url=url, timeout=30) as client:
            metadata = client.get("/metadata").json()
            answer = client.post("/predict", json=X[:50].tolist()).json()
            # A model that cannot serve (no predict_proba) is refused; the champion stays.
            refused = promote_model(home, LinearSVC().fit(X, digits_labels()))
            # Refused, and tried again later with a growing wait (it may get fixed).
            wait_for(lambda: "(next try in 4 s)" in log.read_text(), 30)
            after_refusal = client.post("/predict", json=X[:5].tolist()).json()["model_tag"]
    finally:
        for client in clients:
            client.stop.set()
        stop_server(proc)

    seen = [s for c in clients for s in c.seen]
    assert {status for status, _ in seen} == {"200"}, seen
    for client in clients:  # each client switches once, and never back
        tags = [tag for _, tag in client.seen]
        assert tags[0] == old_tag and tags[-1] == new_tag
        assert tags == sorted(tags, key=lambda t: t == new_tag)
    assert metadata["model_tag"] == new_tag
    assert answer["model_tag"] == new_tag
    assert answer["labels"] == new_model.predict(X[:50]).tolist()
    np.testing.assert_allclose(answer["probabilities"], new_model.predict_proba(X[:50]), atol=1e-12)
    assert after_refusal == new_tag
    text = log.read_text()
    assert "no predict_proba" in text
    tries = [line for line in text.splitlines() if f"not reloading: cannot load {refused}" in line]
    assert [t.split("next try in ")[1] for t in tries[:3]] == ["1 s)", "2 s)", "4 s)"]
    assert f"model swap: {old_tag} -> {new_tag}" in text  # every swap is logged
    assert other_line not in text


def digits_labels():
    from sklearn.datasets import load_digits

    return load_digits().target
