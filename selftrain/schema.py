"""The model's feature contract, and the two files that hold a packaged model.

The pipeline's package task writes them into a BentoML model directory; the
service reads them back. Neither side needs the other's code.

The model file is skops, not a pickle: loading it constructs only the types skops trusts by
default (scikit-learn's estimators, NumPy, builtins) and the ``TRUSTED_TYPES`` named below,
so a model file that names anything else is refused instead of running it. Packaging refuses
such a model too, so an unreviewed type never reaches the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import skops.io as sio
from pydantic import BaseModel

from selftrain.compiled import compile_and_verify, save_compiled
from selftrain.integrity import IntegrityError, sign_artifacts, verify_artifacts

MODEL_FILE = "model.skops"
LEGACY_MODEL_FILE = "model.joblib"  # packaged before skops: unpickled after verification only
SCHEMA_FILE = "schema.json"
# Types a packaged model holds beyond skops' defaults, reviewed one by one (every base
# estimator, calibration, and the preprocessor of raw tables). Nothing else is loaded.
TRUSTED_TYPES = (
    "numpy.dtype",
    "selftrain.columns.as_categories",
    "selftrain.columns.as_numbers",
    "selftrain.columns.date_part_names",
    "selftrain.columns.date_parts",
    "selftrain.estimator.SelfTrainingClassifier",
    "selftrain.estimators.AutoClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


class UntrustedModel(ValueError):
    """A model holds a type outside ``TRUSTED_TYPES``; the message names it."""


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

    def same_problem(self, other: FeatureSchema) -> bool:
        """True when one model may replace the other: the same record in, the same classes out."""
        return self.same_inputs(other) and self.classes == other.classes

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
    """Write the model (skops) and its schema; return the signed integrity record of both files
    (``selftrain.integrity``), which the caller stores apart from them.

    With ``held_out`` (the validation and test rows, raw), the model is also compiled to
    ONNX and checked on those rows (``selftrain.compiled``): the graph is written only when
    it agrees with scikit-learn, ``compiled.json`` says which form to serve and why, and
    both are in the signed record. ``UntrustedModel`` when the model holds a type outside
    ``TRUSTED_TYPES``."""
    directory = Path(directory)
    data = sio.dumps(model)
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if unknown:
        raise UntrustedModel(f"the model holds types outside selftrain.schema.TRUSTED_TYPES: "
                             f"{', '.join(unknown)}; review them and add them there to package it")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(data)
    (directory / SCHEMA_FILE).write_text(schema.model_dump_json(indent=2))
    names = [MODEL_FILE, SCHEMA_FILE]
    if held_out is not None:
        names_in = list(schema.feature_names) if schema.roles else None
        compiled, verdict = compile_and_verify(model, held_out, names_in)
        names += save_compiled(directory, compiled, verdict)
    return sign_artifacts(directory, names)


def load_model(directory: str | Path, record: dict | None = None, what: str | None = None):
    """(model, FeatureSchema) from a directory written by ``save_model``. With ``record``
    (the one ``save_model`` returned), the files are verified before anything is loaded
    and ``IntegrityError`` names ``what`` when they do not verify, or when the model file
    names a type outside ``TRUSTED_TYPES``."""
    directory = Path(directory)
    if record is not None or what is not None:
        verify_artifacts(directory, record, what or str(directory))
    what = what or str(directory)
    schema = FeatureSchema.model_validate(json.loads((directory / SCHEMA_FILE).read_text()))
    if not (directory / MODEL_FILE).exists() and (directory / LEGACY_MODEL_FILE).exists():
        return joblib.load(directory / LEGACY_MODEL_FILE), schema
    unknown = sorted(set(sio.get_untrusted_types(file=directory / MODEL_FILE))
                     - set(TRUSTED_TYPES))
    if unknown:
        raise IntegrityError(f"{what}: the model file names types outside "
                             f"selftrain.schema.TRUSTED_TYPES ({', '.join(unknown)[:200]}): "
                             "refused")
    return sio.load(directory / MODEL_FILE, trusted=list(TRUSTED_TYPES)), schema
