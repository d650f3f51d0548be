"""What a client sees when a new model is promoted under load (serving.reload).

A real ``bentoml serve`` with the default reload interval; 16 clients send single-row
requests back to back (and one sends 100-row requests) while this process promotes
new models into the store. Per promotion: errors, latency before and around the swap,
and the time from the store write to the first answer from the new model.

    python -m benchmarks.reload [--promotions N]

Prints a table, writes benchmarks/results/reload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.serving import ROOT, machine, make_payloads, running_servers
from serving.reload import DEFAULT_RELOAD_SECONDS
from serving.run import server_command

RESULTS = Path(__file__).parent / "results" / "reload.json"
CLIENTS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        X, first = promote(0)
        payloads = make_payloads(X)
        with running_servers({"bentoml": (server_command, {})}) as urls:
            runs = asyncio.run(measure(urls["bentoml"], payloads, first, args.promotions))
    print_table(runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    summary = {"reload_seconds": DEFAULT_RELOAD_SECONDS, "clients": CLIENTS, "runs": runs}
    RESULTS.write_text(json.dumps({**summary, **machine()}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def promote(seed: int) -> tuple[np.ndarray, str]:
    """A 100-tree forest (seeded) into the store the way the package task writes it."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from benchmarks.serving import FEATURES, LINE
    from selftrain.lines import record_promotion
    from selftrain.record import PackagedModel
    from selftrain.schema import FeatureSchema
    from tasks.model_store import store_model

    X, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=seed).fit(X, y)
    schema = FeatureSchema(
        feature_names=FEATURES, dtypes=["float64"] * 64, classes=model.classes_.tolist()
    )
    tag = store_model(model, PackagedModel(line=LINE, run=f"bench-{seed}", features=schema))
    record_promotion(LINE, tag, by="benchmarks/reload.py")
    return X.astype(np.float64), tag


async def measure(url: str, payloads: dict, first_tag: str, promotions: int) -> list[dict]:
    """Clients run throughout; each promotion happens after 3 s of steady load."""
    import aiohttp

    log: list[tuple[float, float, int, str | None]] = []  # start, latency, status, tag
    stop = asyncio.Event()

    async def client(session, bodies):
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i % len(bodies)]) as resp:
                    body = await resp.read()
                    tag = json.loads(body).get("model_tag") if resp.status == 200 else None
                    status = resp.status
            except aiohttp.ClientError:
                status, tag = 0, None
            log.append((start, time.perf_counter() - start, status, tag))
            i += 1

    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=CLIENTS + 1)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        feeds = [payloads["single"]] * CLIENTS + [payloads["rows100"]]
        tasks = [asyncio.create_task(client(session, bodies)) for bodies in feeds]
        runs, current = [], first_tag
        for seed in range(1, promotions + 1):
            await asyncio.sleep(3)
            began = time.perf_counter()
            _, tag = await asyncio.to_thread(promote, seed)
            written = time.perf_counter()
            await wait_until(lambda t=tag: any(e[3] == t for e in log[-CLIENTS:]), 60)
            await asyncio.sleep(2)
            runs.append(summarize(log, began, written, tag, current))
            current = tag
        stop.set()
        await asyncio.gather(*tasks)
    return runs


async def wait_until(condition, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while not condition() and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


def summarize(log: list, began: float, written: float, new: str, old: str) -> dict:
    before = [lat for start, lat, _, _ in log if began - 3 <= start < began]
    window = [e for e in log if e[0] >= began]
    first_new = min((s for s, _, _, tag in window if tag == new), default=None)
    last_old_end = max((s + lat for s, lat, _, tag in window if tag == old), default=None)
    around = [lat for s, lat, _, _ in window if first_new and abs(s - first_new) <= 1]
    return {
        "requests": len(window),
        "errors": sum(status != 200 for _, _, status, _ in window),
        "other_tags": sum(tag not in (old, new) for _, _, status, tag in window if status == 200),
        "steady_p50_ms": _ms(np.percentile(before, 50)),
        "steady_p99_ms": _ms(np.percentile(before, 99)),
        "swap_p99_ms": _ms(np.percentile(around, 99)) if around else None,
        "swap_max_ms": _ms(max(around)) if around else None,
        "store_write_s": round(written - began, 2),
        "new_tag_after_s": round(first_new - written, 2) if first_new else None,
        "old_tag_last_answer_after_s": round(last_old_end - first_new, 3)
        if first_new and last_old_end
        else None,
    }


def _ms(seconds: float) -> float:
    return round(float(seconds) * 1000, 1)


def print_table(runs: list[dict]) -> None:
    keys = list(runs[0])
    print(f"{'promotion':<28}" + "".join(f"{i + 1:>10}" for i in range(len(runs))))
    for key in keys:
        print(f"{key:<28}" + "".join(f"{str(run[key]):>10}" for run in runs))


if __name__ == "__main__":
    main()
