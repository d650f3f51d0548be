"""Serving speed, side by side in one run, on two models: a 100-tree random forest on
digits (64 numeric features, rows as arrays) and the same forest behind its preprocessor on
Palmer penguins (numbers with gaps, text categories; rows as raw records).

Targets per model: in-process ``predict_proba`` (what the server calls); a bare FastAPI +
uvicorn app serving the scikit-learn model; our BentoML service, with its batcher and
without. Measures single-row p50/p99 at 1 client, requests/s and p99 at 16 and 64
clients, a 100-row request, errors, and the server's resident memory after the load.
Then one single-row request taken apart stage by stage, in process (where the time goes).
127.0.0.1 only, bounded runs.

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
from typing import Any

import numpy as np

from serving.run import server_command, server_env

os.environ.update({"DO_NOT_TRACK": "1", "BENTOML_DO_NOT_TRACK": "True", "OMP_NUM_THREADS": "1"})

RESULTS = Path(__file__).parent / "results" / "serving.json"
ROOT = Path(__file__).resolve().parent.parent
BARS = {"c64_rps_ratio_min": 10.0, "c64_p99_ms_max": 200.0, "c1_p50_ratio_max": 1.0,
        "rows100_p50_ratio_max": 1.0}
COLUMNS = ["c1_p50_ms", "c1_p99_ms", "c16_rps", "c16_p99_ms", "c64_rps", "c64_p99_ms",
           "rows100_p50_ms", "errors", "rss_mb"]


def main() -> None:
    args = _parse_args()
    if args.bare:
        run_bare_app(int(args.bare[0]), args.bare[1])
        return
    durations = ({"c1": 150, "load": 4.0, "rows100": 30} if args.quick
                 else {"c1": 300, "load": 8.0, "rows100": 45})
    out = {"models": {}, **machine()}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        for name in args.models:
            loaded, rows, body = make_model(name)
            payloads = make_payloads(rows, body)
            results = {"in_process": measure_in_process(loaded, rows)}
            tag = {"SELFTRAIN_MODEL_TAG": loaded.tag}
            targets = {
                "bare_fastapi": (lambda port, p=loaded.path: bare_command(port, p), {}),
                "selftrain_batching": (server_command, {**tag, "SELFTRAIN_BATCHING": "1"}),
                "selftrain_no_batching": (server_command, {**tag, "SELFTRAIN_BATCHING": "0"}),
            }
            if body == "arrays":  # BentoML's own batcher takes an ndarray: numeric models only
                targets["bentoml_batchable"] = (batchable_command, tag)
            with running_servers(targets, Path(tmp)) as (urls, rss):
                results.update(asyncio.run(run_load(urls, payloads, durations)))
                for target, megabytes in rss().items():
                    results[target]["rss_mb"] = megabytes
            out["models"][name] = {"results": results, "bars": summarize(results),
                                   "profile": profile_one_request(loaded, rows, body)}
            print_model(name, out["models"][name])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


class Bench:
    """What a target needs of one model: its store tag and path, and the loaded model."""

    def __init__(self, tag: str) -> None:
        import bentoml

        from serving.model import open_model

        stored = bentoml.models.get(tag)
        self.tag, self.path, self.model = tag, stored.path, open_model(stored)


def make_model(name: str):
    """(Bench, request rows, "arrays"|"records"): a 100-tree forest on ``name``, promoted
    into the temporary store the way the package task writes it."""
    from sklearn.ensemble import RandomForestClassifier

    from selftrain.lines import record_promotion
    from selftrain.record import PackagedModel
    from selftrain.schema import FeatureSchema
    from tasks.model_store import store_model

    forest = RandomForestClassifier(n_estimators=100, random_state=0)
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True, as_frame=True)
        X.columns = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
        model = forest.fit(X.to_numpy(float), y)
        schema = FeatureSchema.from_frame(X.astype(float).iloc[:0], model.classes_)
        rows, body = X.to_numpy(float), "arrays"
    else:
        from benchmarks.real_data import load_table
        from selftrain.columns import (
            infer_roles,
            known_categories,
            learned_medians,
            tabular_pipeline,
        )

        frame = load_table("penguins")
        X, y = frame.drop(columns=["species"]), frame["species"]
        roles = infer_roles(X)
        model = tabular_pipeline(forest, roles).fit(X, y)
        pre = model.steps[0][1]
        schema = FeatureSchema.from_frame(X.iloc[:0], model.classes_, roles,
                                          known_categories(pre), learned_medians(pre))
        rows, body = X[schema.feature_names], "records"
    # Stored and made production the way a run does: the compiled (ONNX) form is checked
    # on held-out rows and served when it agrees, as in production.
    record = PackagedModel(line=f"bench-{name}", features=schema,
                           config={"serving": {"max_batch_rows": 1000}})
    tag = store_model(model, record, held_out=[rows[:300]])
    record_promotion(record.line, tag, by="benchmarks/serving.py")
    return Bench(tag), rows, body


def make_payloads(rows, body: str) -> dict[str, list[bytes]]:
    """Single-row and 100-row request bodies, as a client of this model sends them."""
    chunk = records if body == "records" else (lambda r: np.asarray(r).tolist())
    single = [json.dumps(chunk(rows[i:i + 1])).encode() for i in range(50)]
    hundred = [json.dumps(chunk(rows[i:i + 100])).encode() for i in range(0, 300, 100)]
    return {"single": single, "rows100": hundred}


def records(frame) -> list[dict]:
    """Rows as JSON records: null for a missing value."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]


def as_array(bench: Bench, rows) -> np.ndarray:
    """``rows`` as the server hands them to the model (records through our validator)."""
    from selftrain.row_rules import RowValidator

    if not bench.model.schema.roles:
        return np.asarray(rows, dtype=np.float64)
    return RowValidator(bench.model.schema, len(rows)).as_array(records(rows))


def measure_in_process(bench: Bench, rows) -> dict:
    """The floor: the served model's predict (predict_proba + labels), no HTTP."""
    array = as_array(bench, rows)
    single = _timed(lambda i: bench.model.predict(array[i % 50:i % 50 + 1]), 300)
    hundred = _timed(lambda i: bench.model.predict(array[(i % 3) * 100:(i % 3) * 100 + 100]), 60)
    return {"c1_p50_ms": _pct(single, 50), "c1_p99_ms": _pct(single, 99),
            "rows100_p50_ms": _pct(hundred, 50)}


def profile_one_request(bench: Bench, rows, body: str) -> dict:
    """Median milliseconds of each stage our server runs for a one-row request, in
    process: our validation, BentoML's typed parse, the array, the model, the answer."""
    from pydantic import TypeAdapter

    from selftrain.row_rules import RowValidator
    from serving.model import Prediction

    validator = RowValidator(bench.model.schema, 1000)
    payload = make_payloads(rows, body)["single"][0]
    typed = TypeAdapter(dict[str, validator.rows_type])
    wrapped = b'{"rows":' + payload + b"}"
    parsed = typed.validate_json(wrapped)["rows"]
    array = validator.as_array(parsed)
    labels, proba = bench.model.predict(array)
    stages = {
        "our validation (guard)": lambda: validator.check(payload),
        "BentoML typed parse": lambda: typed.validate_json(wrapped),
        "rows to array": lambda: validator.as_array(parsed),
        "model predict_proba + labels": lambda: bench.model.predict(array),
        "answer to JSON": lambda: Prediction.model_construct(
            model_tag=bench.tag, classes=[], labels=labels.tolist(),
            probabilities=proba.tolist()).model_dump_json(),
    }
    return {stage: round(float(np.median(_timed(lambda _i, f=f: f(), 200))) * 1000, 3)
            for stage, f in stages.items()}


@contextlib.contextmanager
def running_servers(targets: dict, tmp: Path):
    """All servers of one model up at once (idle ones cost little); each stopped by its
    process group. Yields the URLs and a function giving each server's RSS in MB."""
    import psutil

    procs, urls = {}, {}
    try:
        for name, (command, env) in targets.items():
            port = _free_port()
            log = tmp / f"{name}.log"
            with log.open("wb") as out:
                procs[name] = subprocess.Popen(
                    command(port), cwd=ROOT, env=server_env(**env), stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True)
            urls[name] = f"http://127.0.0.1:{port}/predict"
            _wait_up(urls[name], procs[name], log)

        def rss() -> dict[str, float]:
            out = {}
            for name, proc in procs.items():
                family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
                out[name] = round(sum(p.memory_info().rss for p in family) / 2**20, 1)
            return out

        yield urls, rss
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


async def run_load(urls: dict, payloads: dict, durations: dict, rounds: int = 3) -> dict:
    """Each phase in short rounds that alternate between targets, so that a change in
    the machine's background load hits every target alike."""
    out = {name: {"errors": 0} for name in urls}
    phases = [("c1", "single", 1, durations["c1"] // rounds, None)]
    for c in (16, 64):
        phases.append((f"c{c}", "single", c, None, durations["load"] / rounds))
    phases.append(("rows100", "rows100", 1, durations["rows100"] // rounds, None))

    def bodies_for(name: str, kind: str) -> list[bytes]:
        if name == "bentoml_batchable":  # BentoML's documented body: {"rows": ...}
            return [b'{"rows":' + b + b"}" for b in payloads[kind]]
        return payloads[kind]

    for name, url in urls.items():
        await closed_loop(url, bodies_for(name, "single"), 1, count=30)  # warm-up
    for phase, kind, concurrency, count, seconds in phases:
        merged = {name: {"lat": [], "t": 0.0} for name in urls}
        for _ in range(rounds):
            for name, url in urls.items():
                got = await closed_loop(url, bodies_for(name, kind), concurrency, count, seconds)
                merged[name]["lat"] += got["latencies"]
                merged[name]["t"] += got["elapsed"]
                out[name]["errors"] += got["errors"]
        for name, m in merged.items():
            out[name][f"{phase}_p50_ms"] = _pct(m["lat"], 50)
            out[name][f"{phase}_p99_ms"] = _pct(m["lat"], 99)
            if concurrency > 1:
                out[name][f"{phase}_rps"] = round(len(m["lat"]) / m["t"], 1)
    return out


async def closed_loop(url, bodies, concurrency, count=None, seconds=None) -> dict:
    """``concurrency`` clients each sending the next request when the last one answers."""
    import aiohttp

    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + (seconds or 3600)
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
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return {"latencies": latencies, "elapsed": time.perf_counter() - began, "errors": errors}


def summarize(results: dict) -> dict:
    ours, bare = results["selftrain_batching"], results["bare_fastapi"]
    report = {
        "c64_rps_ratio": round(ours["c64_rps"] / bare["c64_rps"], 2),
        "c64_p99_ms": ours["c64_p99_ms"],
        "c1_p50_ratio": round(ours["c1_p50_ms"] / bare["c1_p50_ms"], 2),
        "rows100_p50_ratio": round(ours["rows100_p50_ms"] / bare["rows100_p50_ms"], 2),
        "errors": ours["errors"],
    }
    report["met"] = {
        "c64_rps_x10_p99_200ms_no_errors": report["c64_rps_ratio"] >= BARS["c64_rps_ratio_min"]
        and report["c64_p99_ms"] <= BARS["c64_p99_ms_max"] and report["errors"] == 0,
        "c1_p50_not_above_bare": report["c1_p50_ratio"] <= BARS["c1_p50_ratio_max"],
        "rows100_not_slower": report["rows100_p50_ratio"] <= BARS["rows100_p50_ratio_max"],
    }
    return {**report, "targets": BARS}


def print_model(name: str, result: dict) -> None:
    print(f"\n== {name} ==")
    print(f"{'target':<24}" + "".join(f"{c.replace('_ms', ''):>15}" for c in COLUMNS))
    for target, row in result["results"].items():
        print(f"{target:<24}" + "".join(f"{_cell(row.get(c)):>15}" for c in COLUMNS))
    bars = result["bars"]
    print(f"ours/bare: c64 rps x{bars['c64_rps_ratio']} (bar >= 10, p99 <= 200 ms: "
          f"{bars['c64_p99_ms']}), c1 p50 x{bars['c1_p50_ratio']} (bar <= 1), 100-row p50 "
          f"x{bars['rows100_p50_ratio']} (bar <= 1), errors {bars['errors']}: {bars['met']}")
    print("one single-row request, in process (median ms): " + ", ".join(
        f"{stage} {ms}" for stage, ms in result["profile"].items()))


def batchable_command(port: int) -> list[str]:
    """BentoML's public adaptive batching (benchmarks/bentoml_batchable.py), same model."""
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    return [str(bentoml_cli), "serve", "benchmarks.bentoml_batchable:BatchableModel",
            "--host", "127.0.0.1", "--port", str(port)]


def bare_command(port: int, model_dir: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.serving", "--bare", str(port), model_dir]


def run_bare_app(port: int, model_dir: str) -> None:
    """The comparison: the FastAPI app one writes first, same model, same answer."""
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI

    from selftrain.schema import load_model

    model, schema = load_model(model_dir)
    classes = model.classes_.tolist()
    app = FastAPI()

    def answer(X) -> dict:
        proba = model.predict_proba(X)
        labels = [classes[i] for i in proba.argmax(axis=1)]
        return {"classes": classes, "labels": labels, "probabilities": proba.tolist()}

    if schema.roles:
        @app.post("/predict")
        def predict_records(rows: list[dict[str, Any]]) -> dict:
            return answer(pd.DataFrame(rows, columns=schema.feature_names))
    else:
        @app.post("/predict")
        def predict(rows: list[list[float]]) -> dict:
            return answer(np.asarray(rows))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def machine() -> dict:
    import bentoml
    import sklearn

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "bentoml": bentoml.__version__, "sklearn": sklearn.__version__,
            "model": "RandomForestClassifier(n_estimators=100); penguins behind its "
                     "ColumnTransformer (raw records)"}


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
    parser.add_argument("--models", nargs="+", default=["digits", "penguins"],
                        choices=["digits", "penguins"])
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "MODEL_DIR"), help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
