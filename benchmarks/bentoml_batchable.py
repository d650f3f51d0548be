"""A peer for benchmarks/serving.py: the same model behind BentoML's own adaptive batching,
``@bentoml.api(batchable=True)``, and nothing else (no validation, probabilities only), so
the benchmark measures whether BentoML's batcher pays against ours.

    SELFTRAIN_MODEL_TAG=name:version bentoml serve benchmarks.bentoml_batchable:BatchableModel
"""

from __future__ import annotations

import os

import bentoml
import numpy as np

from serving.model import open_model


@bentoml.service(name="bench-batchable", workers=1, traffic={"timeout": 60},
                 tracing={"excluded_urls": ["/predict"]}, logging={"access": {"enabled": False}})
class BatchableModel:
    model_ref = bentoml.models.BentoModel(os.environ.get("SELFTRAIN_MODEL_TAG", "bench-digits"))

    def __init__(self) -> None:
        self.model = open_model(self.model_ref)

    @bentoml.api(batchable=True, max_batch_size=1000, max_latency_ms=10_000)
    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.model.predict(rows)[1]
