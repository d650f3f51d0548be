"""The model's feature contract, and the two files that hold a packaged model.

The pipeline's package task writes them into a BentoML model directory; the
service reads them back. Neither side needs the other's code.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from pydantic import BaseModel

MODEL_FILE = "model.joblib"
SCHEMA_FILE = "schema.json"


class FeatureSchema(BaseModel):
    """What a request must carry: these features, in this order, of these dtypes."""

    feature_names: list[str]
    dtypes: list[str]
    classes: list[int | str]

    @classmethod
    def from_frame(cls, features, classes) -> FeatureSchema:
        return cls(
            feature_names=[str(c) for c in features.columns],
            dtypes=[str(t) for t in features.dtypes],
            classes=[c.item() if isinstance(c, np.generic) else c for c in classes],
        )


def save_model(directory: str | Path, model, schema: FeatureSchema) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / MODEL_FILE)
    (directory / SCHEMA_FILE).write_text(schema.model_dump_json(indent=2))


def load_model(directory: str | Path):
    """(model, FeatureSchema) from a directory written by ``save_model``."""
    directory = Path(directory)
    schema = FeatureSchema.model_validate(json.loads((directory / SCHEMA_FILE).read_text()))
    return joblib.load(directory / MODEL_FILE), schema
