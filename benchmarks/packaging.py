"""What the safe model format and the atomic store entry cost, side by side with what they
replace: skops against a joblib pickle (write, verified load, size), and an entry that
enters the store by rename from a staging store against BentoML's own ``models.create``.

Two models: a 100-tree forest on digits (numeric) and a self-training forest behind the
preprocessor of a raw churn table (text, booleans, dates). Medians of ``--repeats``.

    python -m benchmarks.packaging [--repeats 5]

Prints a table, writes benchmarks/results/packaging.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "packaging.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-packaging-") as tmp:
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        rows = []
        for name, (model, schema, X) in models().items():
            rows += formats(name, model, schema, X, Path(tmp), args.repeats)
            rows += entries(name, model, schema, args.repeats)
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "repeats": args.repeats,
                                   "python": platform.python_version(),
                                   "cpus": os.cpu_count()}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def models() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from selftrain.columns import infer_roles
    from selftrain.config import PipelineConfig
    from selftrain.recommended import build_classifier
    from selftrain.schema import FeatureSchema

    sys.path.insert(0, str(ROOT / "tests/integration"))
    from test_real_tables import churn_table

    X, y = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    digits_schema = FeatureSchema(feature_names=[f"f{i}" for i in range(64)],
                                  dtypes=["float64"] * 64, classes=forest.classes_.tolist())
    frame = churn_table()
    labels = np.array([v if isinstance(v, str) else -1 for v in frame["churned"]], dtype=object)
    raw = frame.drop(columns=["customer", "churned"])
    config = PipelineConfig()
    churn = build_classifier(config.self_training, 0, infer_roles(raw), config.data)
    churn.fit(raw, labels)
    churn_schema = FeatureSchema.from_frame(raw, churn.classes_)
    return {"digits forest": (forest, digits_schema, X[:50]),
            "churn self-training": (churn, churn_schema, raw.iloc[:50])}


def formats(name: str, model, schema, X, tmp: Path, repeats: int) -> list[dict]:
    from selftrain.integrity import sign_artifacts, verify_artifacts
    from selftrain.schema import MODEL_FILE, load_model, save_model

    out = []
    target = tmp / "skops"
    write = _median(lambda: save_model(target, model, schema), repeats)
    record = save_model(target, model, schema)
    read = _median(lambda: load_model(target, record, "bench"), repeats)
    assert np.allclose(load_model(target, record, "bench")[0].predict_proba(X),
                       model.predict_proba(X))
    out.append({"model": name, "what": "model file: skops (reviewed types)", "write_s": write,
                "read_s": read, "bytes": (target / MODEL_FILE).stat().st_size})
    pickled = tmp / "joblib"
    pickled.mkdir(exist_ok=True)

    def joblib_save():
        joblib.dump(model, pickled / "model.joblib")
        return sign_artifacts(pickled, ["model.joblib"])

    write = _median(joblib_save, repeats)
    signed = joblib_save()

    def joblib_load():
        verify_artifacts(pickled, signed, "bench")
        return joblib.load(pickled / "model.joblib")

    read = _median(joblib_load, repeats)
    out.append({"model": name, "what": "model file: joblib pickle (before)", "write_s": write,
                "read_s": read, "bytes": (pickled / "model.joblib").stat().st_size})
    return out


def entries(name: str, model, schema, repeats: int) -> list[dict]:
    import bentoml

    from selftrain.record import PackagedModel
    from selftrain.schema import save_model
    from tasks.model_store import store_model

    record = PackagedModel(line="bench", features=schema)
    atomic = _median(lambda: store_model(model, record), repeats)

    def plain():
        with bentoml.models.create("bench-plain", labels=record.labels(),
                                   metadata=record.metadata()) as entry:
            entry.info.metadata["integrity"] = save_model(entry.path, model, schema)
        shutil.rmtree(entry.path, ignore_errors=True)

    direct = _median(plain, repeats)
    return [{"model": name, "what": "store entry: staged + verified + renamed", "write_s": atomic},
            {"model": name, "what": "store entry: bentoml.models.create (before)",
             "write_s": direct}]


def _median(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(rows: list[dict]) -> None:
    print(f"{'model':<22} {'what':<45} {'write s':>8} {'load s':>8} {'MB':>6}")
    for row in rows:
        read = f"{row['read_s']:.3f}" if "read_s" in row else "-"
        size = f"{row['bytes'] / 2**20:.1f}" if "bytes" in row else "-"
        print(f"{row['model']:<22} {row['what']:<45} {row['write_s']:>8.3f} {read:>8} {size:>6}")


if __name__ == "__main__":
    main()
