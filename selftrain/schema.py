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

from selftrain.compiled import compile_and_verify, save_compiled
from selftrain.integrity import sign_artifacts, verify_artifacts

MODEL_FILE = "model.joblib"
SCHEMA_FILE = "schema.json"


class FeatureSchema(BaseModel):
    """What a request carries: these features (in this order for array rows), each with
    its role (numeric, categorical, datetime) and training dtype; for categorical columns
    the categories the model knows; the columns the model ignores, with the reason."""

    feature_names: list[str]
    dtypes: list[str]
    classes: list[int | str]
    roles: dict[str, str] = {}  # absent: every feature is numeric (models before roles)
    categories: dict[str, dict[str, list[str]]] = {}
    medians: dict[str, float | None] = {}  # what fills a missing number
    dropped: dict[str, str] = {}

    @classmethod
    def from_frame(cls, features, classes, roles=None, categories=None,
                   medians=None) -> FeatureSchema:
        """The schema of ``features`` (a frame, possibly empty) with ``roles``."""
        return cls(
            feature_names=[str(c) for c in features.columns],
            dtypes=[str(t) for t in features.dtypes],
            classes=[c.item() if isinstance(c, np.generic) else c for c in classes],
            roles=dict(roles.columns) if roles is not None else {},
            categories=categories or {},
            medians=medians or {},
            dropped=dict(roles.dropped) if roles is not None else {},
        )

    def role(self, name: str) -> str:
        return self.roles.get(name, "numeric")

    def same_inputs(self, other: FeatureSchema) -> bool:
        """True when both models read the same record: the same columns with the same roles."""
        return self.feature_names == other.feature_names and all(
            self.role(n) == other.role(n) for n in self.feature_names)

    def columns(self) -> list[dict]:
        """Each column with its role, dtype and known categories: what /metadata lists."""
        out = []
        for name, dtype in zip(self.feature_names, self.dtypes, strict=True):
            column = {"name": name, "role": self.role(name), "dtype": dtype}
            if name in self.categories:
                column["categories"] = self.categories[name]
            if name in self.medians:
                column["fills_missing_with"] = self.medians[name]
            out.append(column)
        return out


def save_model(directory: str | Path, model, schema: FeatureSchema,
               held_out: list | None = None) -> dict:
    """Write the model and its schema; return the signed integrity record of both files
    (``selftrain.integrity``), which the caller stores apart from them.

    With ``held_out`` (the validation and test rows, raw), the model is also compiled to
    ONNX and checked on those rows (``selftrain.compiled``): the graph is written only when
    it agrees with scikit-learn, ``compiled.json`` says which form to serve and why, and
    both are in the signed record."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / MODEL_FILE)
    (directory / SCHEMA_FILE).write_text(schema.model_dump_json(indent=2))
    names = [MODEL_FILE, SCHEMA_FILE]
    if held_out is not None:
        names_in = list(schema.feature_names) if schema.roles else None
        compiled, verdict = compile_and_verify(model, held_out, names_in)
        names += save_compiled(directory, compiled, verdict)
    return sign_artifacts(directory, names)


def load_model(directory: str | Path, record: dict | None = None, what: str | None = None):
    """(model, FeatureSchema) from a directory written by ``save_model``. With ``record``
    (the one ``save_model`` returned), the files are verified before anything is unpickled
    and ``IntegrityError`` names ``what`` when they do not verify."""
    directory = Path(directory)
    if record is not None or what is not None:
        verify_artifacts(directory, record, what or str(directory))
    schema = FeatureSchema.model_validate(json.loads((directory / SCHEMA_FILE).read_text()))
    return joblib.load(directory / MODEL_FILE), schema
