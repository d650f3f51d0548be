"""Batch scoring and in-process latency: compiled (ONNX Runtime) against scikit-learn, side
by side in one run, on the packaged shape of two models (preprocessor + 100-tree forest):

- ``digits``: 64 numeric columns (scikit-learn's digits, rows resampled to the table size);
- ``mixed``: numbers with gaps, a text and a boolean category, an ISO date column.

For each: ``selftrain predict``'s engine (``tasks.score.score_table``) on a Parquet table of
``--rows`` rows (read, row rules, scoring, write), rows/s; the model alone on the same rows
in memory; and in-process ``predict_proba`` latency of 1 and 100 raw records (p50/p99).
Bar: >= 100,000 rows/s end to end on this machine.

    python -m benchmarks.batch_scoring [--rows 1000000] [--quick]

Prints a table, writes benchmarks/results/batch_scoring.json.

``--cli`` runs what a user runs instead: each model stored and promoted as a run stores it
(compiled and verified), then ``selftrain predict`` in a fresh process under
``/usr/bin/time -v`` on Parquet and CSV files of each size given, side by side (say 1M and
10M rows: streaming should keep the peak memory about the same), rows/s and peak RSS. The
files are written chunk by chunk and deleted afterwards (10M digits rows: ~1.6 GB of CSV).

    python -m benchmarks.batch_scoring --cli [--sizes 1000000 10000000] [--formats parquet csv]

Writes benchmarks/results/batch_scoring_cli.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from selftrain.columns import infer_roles, known_categories, learned_medians, tabular_pipeline
from selftrain.compiled import Predictor, load_predictor
from selftrain.schema import FeatureSchema, save_model
from tasks.score import ScoringModel, score_table

RESULTS = Path(__file__).parent / "results" / "batch_scoring.json"
CLI_RESULTS = RESULTS.with_name("batch_scoring_cli.json")
GENERATE_CHUNK = 1_000_000  # rows generated and written at a time
BAR_ROWS_PER_S = 100_000
THREADS = 1  # onnxruntime threads (--threads)


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice", "Lille", "Brest"], n,
                      p=[.4, .3, .2, .095, .005]).astype(object)
    city[rng.random(n) < 0.05] = None
    active = rng.random(n) < 0.5
    age = np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float))
    income = rng.normal(3000, 800, n).round(2)
    days = rng.integers(0, 700, n)
    signup = (np.datetime64("2023-01-01") + days.astype("timedelta64[D]")).astype(str)
    score = np.nan_to_num(age, nan=40) / 40 + active + income / 3000 + rng.normal(0, .3, n)
    return pd.DataFrame({"id": np.arange(n), "city": city, "active": active, "age": age,
                         "income": income, "signup": signup,
                         "label": np.digitize(score, [2.0, 2.8])})


def digits_table(n: int, seed: int) -> pd.DataFrame:
    X, y = load_digits(return_X_y=True, as_frame=True)
    pick = np.random.default_rng(seed).integers(0, len(X), n)
    frame = X.iloc[pick].reset_index(drop=True)
    frame.insert(0, "id", np.arange(n))
    frame["label"] = y.to_numpy()[pick]
    return frame


TABLES = {"digits": digits_table, "mixed": mixed_table}


def fit(name: str):
    """(fitted model of raw records, its schema, held-out raw rows) for table ``name``."""
    train = TABLES[name](1500, 0)
    y = train.pop("label")
    roles = infer_roles(train, exclude=["id"])
    model = tabular_pipeline(RandomForestClassifier(100, random_state=0), roles).fit(train, y)
    pre = model.steps[0][1]
    schema = FeatureSchema.from_frame(train[roles.features].iloc[:0], model.classes_, roles,
                                      known_categories(pre), learned_medians(pre))
    return model, schema, TABLES[name](500, 1)[roles.features]


def package(name: str, directory: Path):
    """(in-process model, compiled predictor, scikit-learn predictor, schema): the model
    packaged as ``save_model`` packages it, compiled and verified on held-out rows."""
    model, schema, held_out = fit(name)
    record = save_model(directory, model, schema, held_out=[held_out])
    (directory / "record.json").write_text(json.dumps(record))
    compiled = load_predictor(directory, record, name, threads=THREADS)
    compiled.schema = schema
    sklearn = Predictor("sklearn", "benchmark", schema.classes, list(schema.feature_names),
                        sklearn_model=model)
    return model, compiled, sklearn, schema


def measure_batch(predictor: Predictor, schema, path: Path, out: Path) -> dict:
    target = ScoringModel("bench", predictor, schema, "id")
    summary = score_table(target, path, out, chunk_rows=100_000)
    return {"seconds": summary.seconds, "rows": summary.rows,
            "rows_per_s": round(summary.rows / summary.seconds)}


def measure_csv_subprocess(model_dir: Path, record_path: Path, csv: Path, out: Path) -> dict:
    """End-to-end scoring of a CSV in a fresh process (one onnxruntime thread): rows/s and
    the peak resident memory, which streaming keeps bounded by the chunk, not the table."""
    code = (
        "import json, re, sys\n"
        "def hwm():  # peak RSS of this process image (ru_maxrss survives exec: the parent's)\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', text).group(1)) / 1024\n"
        "from selftrain.compiled import load_predictor\n"
        "from tasks.score import ScoringModel, score_table\n"
        "import onnxruntime\n"
        "base = hwm()\n"
        "d, rec, csv, out = sys.argv[1:5]\n"
        "p = load_predictor(d, json.load(open(rec)), 'bench')\n"
        "s = score_table(ScoringModel('bench', p, p.schema, 'id'), csv, out)\n"
        "print(json.dumps({'rows': s.rows, 'seconds': s.seconds, 'inference': s.inference,\n"
        "  'rss_after_imports_mb': round(base),\n"
        "  'peak_rss_mb': round(hwm())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(model_dir), str(record_path),
                           str(csv), str(out)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = round(result["rows"] / result["seconds"])
    result["csv_mb"] = round(csv.stat().st_size / 2**20)
    return result


def measure_model_only(predictor: Predictor, frame: pd.DataFrame) -> dict:
    started = time.perf_counter()
    predictor.predict_proba(frame)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "rows_per_s": round(len(frame) / seconds)}


def measure_latency(predictor: Predictor, frame: pd.DataFrame, size: int, reps: int) -> dict:
    times = []
    for i in range(reps):
        start = (i * size) % (len(frame) - size)
        rows = frame.iloc[start:start + size]
        began = time.perf_counter()
        predictor.predict_proba(rows)
        times.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3)}


def run(rows: int, reps: int) -> dict:
    results: dict = {"rows": rows, "onnxruntime_threads": THREADS,
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_average_at_start": os.getloadavg()},
                     "bar_rows_per_s": BAR_ROWS_PER_S, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        for name in TABLES:
            model, compiled, sklearn, schema = package(name, tmp / name)
            table = TABLES[name](rows, 2).drop(columns="label")
            path = tmp / f"{name}.parquet"
            table.to_parquet(path, index=False)
            features = table[schema.feature_names]
            entry = {"inference": compiled.kind, "why": compiled.why}
            for kind, predictor in (("onnx", compiled), ("sklearn", sklearn)):
                single = Predictor(predictor.kind, predictor.why, predictor.classes_,
                                   predictor.feature_names, sklearn_model=model,
                                   compiled=predictor._compiled, threads=1)
                entry[kind] = {
                    "batch": measure_batch(predictor, schema, path, tmp / f"{name}-{kind}.pq"),
                    "model_only": measure_model_only(predictor, features),
                    "latency_1_row": measure_latency(single, features, 1, reps),
                    "latency_100_rows": measure_latency(single, features, 100, reps // 2),
                }
            entry["settled_near_ties_share"] = round(compiled.settled_rows / (2 * rows), 5)
            scored = pd.read_parquet(tmp / f"{name}-onnx.pq")
            reference = pd.read_parquet(tmp / f"{name}-sklearn.pq")
            probas = [c for c in scored.columns if c.startswith("proba_")]
            entry["max_abs_diff_onnx_vs_sklearn"] = float(np.max(np.abs(
                scored[probas].to_numpy() - reference[probas].to_numpy())))
            entry["labels_identical"] = bool((scored["label"] == reference["label"]).all())
            if name == "mixed":
                csv = tmp / "mixed.csv"
                table.to_csv(csv, index=False)
                entry["onnx"]["csv_fresh_process"] = measure_csv_subprocess(
                    tmp / name, tmp / name / "record.json", csv, tmp / "mixed-csv.parquet")
            results["models"][name] = entry
    return results


def write_table(name: str, rows: int, path: Path) -> None:
    """``rows`` rows of table ``name`` (no label) to Parquet or CSV, a million at a time,
    so that the generator never holds the table either."""
    writer = None
    try:
        for start in range(0, rows, GENERATE_CHUNK):
            frame = TABLES[name](min(GENERATE_CHUNK, rows - start), 2 + start // GENERATE_CHUNK)
            frame = frame.drop(columns="label")
            frame["id"] += start
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = (pq.ParquetWriter(path, table.schema) if path.suffix == ".parquet"
                          else pa_csv.CSVWriter(path, table.schema))
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def time_v(output: str) -> dict:
    """Wall seconds and peak RSS (MB) from ``/usr/bin/time -v``'s report."""
    fields = dict(line.strip().rsplit(": ", 1) for line in output.splitlines()
                  if ": " in line and line.startswith("\t"))
    wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall)))
    return {"wall_seconds": round(seconds, 2),
            "peak_rss_mb": round(int(fields["Maximum resident set size (kbytes)"]) / 1024)}


def run_cli(sizes: list[int], formats: list[str]) -> dict:
    """``selftrain predict`` in a fresh process on each model, size and format."""
    results: dict = {"sizes": sizes, "formats": formats, "chunk_rows": 100_000,
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_average_at_start": os.getloadavg()},
                     "bar_rows_per_s": BAR_ROWS_PER_S, "runs": []}
    root = Path(__file__).resolve().parents[1]
    selftrain = Path(sys.executable).with_name("selftrain")
    with tempfile.TemporaryDirectory(prefix="bench-batch-cli-") as tmp:
        tmp = Path(tmp)
        # BentoML fixes its store at first use: this process's store is the temporary one.
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        from selftrain.lines import record_promotion
        from selftrain.record import PackagedModel
        from tasks.model_store import store_model

        for name in TABLES:
            model, schema, held_out = fit(name)
            record = PackagedModel(line=f"bench-{name}", features=schema,
                                   config={"data": {"id_column": "id"}})
            tag = store_model(model, record, held_out=[held_out])  # as a run stores it
            record_promotion(record.line, tag, by="benchmark")
            for rows in sizes:
                for fmt in formats:
                    table = tmp / f"{name}-{rows}.{fmt}"
                    out = tmp / f"{name}-{rows}-{fmt}.predictions.parquet"
                    write_table(name, rows, table)
                    command = ["/usr/bin/time", "-v", str(selftrain), "predict", "--input",
                               str(table), "--output", str(out), "--model", tag]
                    done = subprocess.run(command, capture_output=True, text=True, cwd=root,
                                          env={**os.environ, "OMP_NUM_THREADS": "1"})
                    if done.returncode != 0:
                        raise RuntimeError(f"{command}: exit {done.returncode}\n"
                                           f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
                    said = re.search(r"scored (\d+) of (\d+) rows .*?\((\w+)\) in ([\d.]+) s",
                                     " ".join(done.stdout.split()))
                    run = {"model": name, "rows": rows, "format": fmt,
                           "file_mb": round(table.stat().st_size / 2**20),
                           "scored": int(said.group(1)), "inference": said.group(3),
                           "scoring_seconds": float(said.group(4)), **time_v(done.stderr)}
                    run["rows_per_s_end_to_end"] = round(rows / run["wall_seconds"])
                    run["rows_per_s_scoring"] = round(rows / run["scoring_seconds"])
                    results["runs"].append(run)
                    print(f"{name:7} {fmt:8} {rows:>11,} rows: {run['rows_per_s_end_to_end']:>8,}"
                          f" rows/s end to end ({run['rows_per_s_scoring']:,} scoring), peak RSS"
                          f" {run['peak_rss_mb']:,} MB, {run['scored']:,} scored", flush=True)
                    table.unlink()  # 10M rows: up to 1.5 GB each
                    out.unlink()
                    out.with_name(out.name + ".refused.csv").unlink(missing_ok=True)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def print_cli_table(results: dict) -> None:
    print(f"\nselftrain predict in a fresh process, {results['machine']['cpus']} cores, "
          f"chunks of {results['chunk_rows']:,} rows\n")
    head = (f"{'model':8} {'format':8} {'rows':>11} {'file MB':>8} {'end-to-end rows/s':>18} "
            f"{'scoring rows/s':>15} {'peak RSS MB':>12}")
    print(head)
    print("-" * len(head))
    for r in results["runs"]:
        print(f"{r['model']:8} {r['format']:8} {r['rows']:>11,} {r['file_mb']:>8,} "
              f"{r['rows_per_s_end_to_end']:>18,} {r['rows_per_s_scoring']:>15,} "
              f"{r['peak_rss_mb']:>12,}")


def print_table(results: dict) -> None:
    print(f"\nbatch scoring, {results['rows']:,} rows, {results['machine']['cpus']} cores "
          f"(bar: >= {BAR_ROWS_PER_S:,} rows/s end to end)\n")
    head = (f"{'model':8} {'runtime':8} {'end-to-end rows/s':>18} {'model-only rows/s':>18} "
            f"{'1 row p50/p99 ms':>18} {'100 rows p50/p99 ms':>20}")
    print(head)
    print("-" * len(head))
    for name, entry in results["models"].items():
        for kind in ("onnx", "sklearn"):
            m = entry[kind]
            one, hundred = m["latency_1_row"], m["latency_100_rows"]
            print(f"{name:8} {kind:8} {m['batch']['rows_per_s']:>18,} "
                  f"{m['model_only']['rows_per_s']:>18,} "
                  f"{one['p50_ms']:>8.3f} / {one['p99_ms']:<7.3f} "
                  f"{hundred['p50_ms']:>9.3f} / {hundred['p99_ms']:<8.3f}")
        ratio = entry["onnx"]["batch"]["rows_per_s"] / entry["sklearn"]["batch"]["rows_per_s"]
        print(f"{'':8} onnx/sklearn end to end: {ratio:.1f}x; labels identical: "
              f"{entry['labels_identical']}; max |p diff| "
              f"{entry['max_abs_diff_onnx_vs_sklearn']:.2g}; near-ties settled by scikit-learn: "
              f"{entry['settled_near_ties_share']:.2%}")
        csv = entry["onnx"].get("csv_fresh_process")
        if csv:
            print(f"{'':8} CSV ({csv['csv_mb']} MB) in a fresh process: {csv['rows_per_s']:,} "
                  f"rows/s end to end, peak RSS {csv['peak_rss_mb']} MB "
                  f"({csv['rss_after_imports_mb']} MB after imports)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=400, help="latency repetitions")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 100 reps")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--cli", action="store_true",
                        help="selftrain predict in a fresh process on files of --sizes rows")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="+", choices=["parquet", "csv"],
                        default=["parquet", "csv"])
    args = parser.parse_args()
    if args.cli:
        results = run_cli(args.sizes, args.formats)
        print_cli_table(results)
        CLI_RESULTS.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {CLI_RESULTS}")
        return
    global THREADS
    THREADS = args.threads
    rows, reps = (100_000, 100) if args.quick else (args.rows, args.reps)
    results = run(rows, reps)
    print_table(results)
    out = RESULTS.with_name("batch_scoring_quick.json") if args.quick else RESULTS
    if THREADS != 1:
        out = out.with_name(out.stem + f"_threads{THREADS}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
