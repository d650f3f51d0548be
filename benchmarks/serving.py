"""Serving speed, side by side in one run against the same model.

Targets: in-process ``predict_proba``; a bare FastAPI + uvicorn app doing the same
work; our BentoML service with adaptive batching and without. Measures single-row
p50/p99 at concurrency 1, throughput and p99 at concurrency 16 and 64, single-row
p50 right after the c64 burst, and a 100-row request. 127.0.0.1 only, bounded runs.

    python -m benchmarks.serving [--quick]

Prints a table, writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from selftrain.config import load_config
from serving.run import server_command, server_env

os.environ.update({"DO_NOT_TRACK": "1", "BENTOML_DO_NOT_TRACK": "True", "OMP_NUM_THREADS": "1"})

RESULTS = Path(__file__).parent / "results" / "serving.json"
ROOT = Path(__file__).resolve().parent.parent
FEATURES = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
LINE = load_config(ROOT / "params.yaml").model_line  # the line the servers follow
BARS = {"c64_rps_ratio_min": 2.0, "c1_p50_ratio_max": 1.5, "rows100_p50_ratio_max": 2.0}


def main() -> None:
    args = _parse_args()
    if args.bare:
        run_bare_app(int(args.bare[0]), args.bare[1])
        return
    durations = (
        {"c1": 150, "load": 4.0, "rows100": 30}
        if args.quick
        else {"c1": 400, "load": 10.0, "rows100": 60}
    )
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        model, X, model_dir = make_model()
        payloads = make_payloads(X)
        results = {"in_process": measure_in_process(model, X)}
        targets = {
            "bare_fastapi": (lambda port: bare_command(port, model_dir), {}),
            "bentoml_batching": (server_command, {"SELFTRAIN_BATCHING": "1"}),
            "bentoml_no_batching": (server_command, {"SELFTRAIN_BATCHING": "0"}),
        }
        with running_servers(targets) as urls:
            results.update(asyncio.run(run_load(urls, payloads, durations)))
    report = summarize(results)
    print_table(results, report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": results, "bars": report, **machine()}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def make_model():
    """A 100-tree random forest on digits, promoted into a temporary BentoML store."""
    import bentoml
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from selftrain.lines import record_promotion
    from selftrain.record import PackagedModel
    from selftrain.schema import FeatureSchema
    from tasks.model_store import store_model

    X, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    schema = FeatureSchema(
        feature_names=FEATURES, dtypes=["float64"] * 64, classes=model.classes_.tolist()
    )
    tag = store_model(model, PackagedModel(line=LINE, run="bench", features=schema))
    record_promotion(LINE, tag, by="benchmarks/serving.py")
    return model, X.astype(np.float64), bentoml.models.get(tag).path


def make_payloads(X: np.ndarray) -> dict[str, list[bytes]]:
    single = [json.dumps([row.tolist()]).encode() for row in X[:50]]
    hundred = [json.dumps(X[i : i + 100].tolist()).encode() for i in range(0, 500, 100)]
    return {"single": single, "rows100": hundred}


def measure_in_process(model, X: np.ndarray) -> dict:
    """The floor: predict_proba + argmax with no HTTP, one row and 100 rows."""
    from serving.model import LoadedModel, predict_rows

    loaded = LoadedModel("bench", model, None, {}, "", True)
    single = _timed(lambda i: predict_rows(loaded, X[i % 50 : i % 50 + 1]), 300)
    hundred = _timed(lambda i: predict_rows(loaded, X[(i % 5) * 100 : (i % 5) * 100 + 100]), 60)
    return {
        "c1_p50_ms": _pct(single, 50),
        "c1_p99_ms": _pct(single, 99),
        "rows100_p50_ms": _pct(hundred, 50),
    }


@contextlib.contextmanager
def running_servers(targets: dict):
    """All servers up at once (idle ones cost nothing); each stopped by its PID group."""
    procs, urls = [], {}
    try:
        for name, (command, env) in targets.items():
            port = _free_port()
            log = Path(os.environ["BENTOML_HOME"]).parent / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    command(port),
                    cwd=ROOT,
                    env=server_env(**env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append(proc)
            urls[name] = f"http://127.0.0.1:{port}/predict"
            _wait_up(urls[name], proc, log)
        yield urls
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


async def run_load(urls: dict, payloads: dict, durations: dict, rounds: int = 3) -> dict:
    """Each phase in short rounds that alternate between targets, so that a change in
    the machine's background load hits every target alike."""
    single, hundred = payloads["single"], payloads["rows100"]
    out = {name: {"errors": 0} for name in urls}
    phases = [("c1", single, 1, durations["c1"] // rounds, None)]
    for c in (16, 64):
        phases.append((f"c{c}", single, c, None, durations["load"] / rounds))
    phases.append(("c1_after_burst", single, 1, durations["c1"] // (2 * rounds), None))
    phases.append(("rows100", hundred, 1, durations["rows100"] // rounds, None))
    for url in urls.values():
        await closed_loop(url, single, 1, count=30)  # warm-up
    for phase, bodies, concurrency, count, seconds in phases:
        merged = {name: {"lat": [], "n": 0, "t": 0.0} for name in urls}
        for _ in range(rounds):
            for name, url in urls.items():
                if phase == "c1_after_burst":
                    await closed_loop(url, bodies, 64, seconds=1.0)  # the burst
                got = await closed_loop(url, bodies, concurrency, count, seconds)
                merged[name]["lat"] += got["latencies"]
                merged[name]["t"] += got["elapsed"]
                out[name]["errors"] += got["errors"]
        for name, m in merged.items():
            out[name].update(_phase_stats(phase, m["lat"], m["t"]))
    return out


def _phase_stats(phase: str, latencies: list[float], elapsed: float) -> dict:
    stats = {f"{phase}_p50_ms": _pct(latencies, 50), f"{phase}_p99_ms": _pct(latencies, 99)}
    if phase in ("c16", "c64"):
        stats[f"{phase}_rps"] = round(len(latencies) / elapsed, 1)
    return stats


async def closed_loop(url, bodies, concurrency, count=None, seconds=None) -> dict:
    """``concurrency`` clients each sending the next request when the last one answers."""
    import aiohttp

    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + (seconds or 3600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"content-type": "application/json"}

    async def client(session):
        nonlocal errors, sent
        while time.perf_counter() < deadline and (count is None or sent < count):
            body = bodies[sent % len(bodies)]
            sent += 1
            start = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    errors += resp.status != 200
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {"latencies": latencies, "elapsed": elapsed, "errors": errors}


def summarize(results: dict) -> dict:
    ours, bare = results["bentoml_batching"], results["bare_fastapi"]
    ratios = {
        "c64_rps_ratio": round(ours["c64_rps"] / bare["c64_rps"], 2),
        "c1_p50_ratio": round(ours["c1_p50_ms"] / bare["c1_p50_ms"], 2),
        "rows100_p50_ratio": round(ours["rows100_p50_ms"] / bare["rows100_p50_ms"], 2),
        "errors": sum(r.get("errors", 0) for r in results.values()),
    }
    ratios["meets_bars"] = (
        ratios["c64_rps_ratio"] >= BARS["c64_rps_ratio_min"]
        and ratios["c1_p50_ratio"] <= BARS["c1_p50_ratio_max"]
        and ratios["rows100_p50_ratio"] <= BARS["rows100_p50_ratio_max"]
        and ratios["errors"] == 0
    )
    return {**ratios, "targets": BARS}


def print_table(results: dict, report: dict) -> None:
    columns = [
        "c1_p50_ms",
        "c1_p99_ms",
        "c16_rps",
        "c16_p99_ms",
        "c64_rps",
        "c64_p99_ms",
        "c1_after_burst_p50_ms",
        "rows100_p50_ms",
        "errors",
    ]
    print(f"{'target':<22}" + "".join(f"{c:>13}" for c in _short(columns)))
    for name, row in results.items():
        cells = "".join(f"{_cell(row.get(c)):>13}" for c in columns)
        print(f"{name:<22}{cells}")
    print(
        f"\nours/bare: c64 rps x{report['c64_rps_ratio']} (bar >= 2), c1 p50 "
        f"x{report['c1_p50_ratio']} (bar <= 1.5), 100-row p50 x{report['rows100_p50_ratio']}"
        f" (bar <= 2), errors {report['errors']} -> meets bars: {report['meets_bars']}"
    )


def bare_command(port: int, model_dir: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.serving", "--bare", str(port), model_dir]


def run_bare_app(port: int, model_dir: str) -> None:
    """The comparison: the FastAPI app one writes first, same model, same answer."""
    import uvicorn
    from fastapi import FastAPI

    from selftrain.schema import load_model

    model, _ = load_model(model_dir)
    classes = model.classes_.tolist()
    app = FastAPI()

    @app.post("/predict")
    def predict(rows: list[list[float]]) -> dict:
        proba = model.predict_proba(np.asarray(rows))
        labels = [classes[i] for i in proba.argmax(axis=1)]
        return {"classes": classes, "labels": labels, "probabilities": proba.tolist()}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def machine() -> dict:
    import bentoml
    import sklearn

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "bentoml": bentoml.__version__,
        "sklearn": sklearn.__version__,
        "model": "RandomForestClassifier(n_estimators=100) on digits, 64 features",
    }


def _timed(call, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
    return out


def _pct(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(seconds, q)) * 1000, 2) if seconds else float("nan")


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}"


def _short(columns: list[str]) -> list[str]:
    return [c.replace("_ms", "").replace("after_burst", "burst") for c in columns]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.post(url, content=b"[]", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} not up after {timeout} s")


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "MODEL_DIR"), help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
