"""Which promoted model the service answers with, and what it tells clients about it.

A server serves one model line (``selftrain.lines``): its production model, or the one
before it when that fails its integrity check, or the tag pinned in $SELFTRAIN_MODEL_TAG,
or, in a built Bento, the model it packed. It serves the compiled (ONNX) form when that
verified at packaging, else the scikit-learn model (``selftrain.compiled``). The tag is resolved at
import of the service so that the class-level model reference names one exact model.
The serving settings (``max_batch_rows``) are those the model was trained with, from its
recorded config, not the working directory's params.yaml.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import bentoml
import numpy as np
import yaml
from pydantic import BaseModel

from selftrain import load_config
from selftrain.compiled import load_predictor
from selftrain.config import PARAMS_FILE, ServingSettings
from selftrain.integrity import RECORD_KEY
from selftrain.record import SCHEMA_KEYS, recorded_serving
from selftrain.schema import SCHEMA_FILE, FeatureSchema
from selftrain.store import NoServableModel, servable_entry

logger = logging.getLogger("selftrain.serving")
# BentoML leaves the root logger at WARNING: without a level of its own, the service's
# info lines (refusals, disconnects, reloads) would never reach the server log.
if logger.level == logging.NOTSET:
    logger.setLevel(logging.INFO)
TAG_ENV = "SELFTRAIN_MODEL_TAG"
LINE_ENV = "SELFTRAIN_MODEL_NAME"
CONFIG_ENV = "SELFTRAIN_CONFIG"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Probabilities(BaseModel):
    """The answer of POST /predict_proba."""

    model_tag: str
    classes: list[int | str]
    probabilities: list[list[float]]


class Prediction(Probabilities):
    """The answer of POST /predict: labels beside their probabilities."""

    labels: list[int | str]


def model_line(environ=os.environ) -> str:
    """The line to serve: the name in $SELFTRAIN_MODEL_TAG, else $SELFTRAIN_MODEL_NAME, else
    the model line of params.yaml (or $SELFTRAIN_CONFIG), the one the run promotes to."""
    if environ.get(TAG_ENV, "").count(":") == 1:
        return environ[TAG_ENV].split(":")[0]
    if environ.get(LINE_ENV):
        return environ[LINE_ENV]
    return load_config(environ.get(CONFIG_ENV, PARAMS_FILE)).model_line


def resolve_model_tag(line: str, requested: str | None = None, loaded: str | None = None) -> str:
    """The exact tag to serve: ``requested`` if given (``name:version`` or a version),
    else the production model of ``line`` that verifies (``selftrain.store``; ``loaded``,
    the model in service, is not hashed again). NoServableModel says why there is none."""
    try:
        return servable_entry(line, requested, skipped=_skipped, loaded=loaded).tag
    except NoServableModel as exc:
        hint = (f" (from ${TAG_ENV})" if requested else
                ": run the training pipeline until a model passes the gate, or point "
                "BENTOML_HOME at the store that holds it")
        raise NoServableModel(f"{exc}{hint}") from None


def stored_schema(tag: str) -> FeatureSchema:
    """The feature schema of the (already verified) entry ``tag``, without loading the model."""
    path = Path(bentoml.models.get(tag).path) / SCHEMA_FILE
    return FeatureSchema.model_validate_json(path.read_text())


_reported: set[str] = set()


def _skipped(reason: str) -> None:
    """Log a production entry passed over, once per process, not at every reload check."""
    if reason not in _reported:
        _reported.add(reason)
        logger.error("skipping %s; serving the production model before it", reason)


def packed_model_tag() -> str | None:
    """In a built Bento, the tag of the model it packed; None when run from the project.

    A Bento keeps its code in ``src/`` next to ``bento.yaml``: it serves what it packed,
    whatever newer model the local store may hold.
    """
    bento_yaml = PROJECT_ROOT.parent / "bento.yaml"
    if PROJECT_ROOT.name != "src" or not bento_yaml.is_file():
        return None
    info = yaml.safe_load(bento_yaml.read_text()) or {}
    entries = [m for svc in info.get("services") or [] for m in svc.get("models") or []]
    entries += info.get("models") or []
    return next((str(m["tag"]) for m in entries if m.get("tag")), None)


@dataclass(frozen=True)
class LoadedModel:
    """The predictor (``selftrain.compiled.Predictor``: ONNX or scikit-learn, with why), its
    feature contract, its serving settings and its store facts."""

    tag: str
    predictor: Any
    schema: FeatureSchema
    settings: ServingSettings
    metadata: dict[str, Any]
    created_at: str

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) of ``rows``, columns in the order of ``classes``."""
        proba = self.predictor.predict_proba(rows)
        return self.predictor.labels(proba), proba

    def describe(self) -> dict[str, Any]:
        """The body of GET /metadata: schema, metrics, lineage and which predictor serves.

        No absolute filesystem path leaves the server: a metadata value that is one
        becomes its path relative to the project when it lies inside it, else its name.
        """
        extra = {k: _without_absolute_paths(v) for k, v in self.metadata.items()
                 if k not in SCHEMA_KEYS}
        return {"model_tag": self.tag, "classes": self.schema.classes,
                "feature_names": self.schema.feature_names, "dtypes": self.schema.dtypes,
                "columns": self.schema.columns(), "stored_at": self.created_at,
                "predictor": {"kind": self.predictor.kind, "why": self.predictor.why}, **extra}


def open_model(stored) -> LoadedModel:
    """Load (after verifying) a model-store entry written by the package task."""
    metadata = dict(stored.info.metadata)
    predictor = load_predictor(stored.path, metadata.get(RECORD_KEY), f"model {stored.tag}")
    if not hasattr(predictor.sklearn_model, "predict_proba"):
        raise TypeError(f"model {stored.tag}: the estimator "
                        f"{type(predictor.sklearn_model).__name__} has no predict_proba")
    logger.info("model %s: serving the %s form (%s)", stored.tag, predictor.kind, predictor.why)
    return LoadedModel(tag=str(stored.tag), predictor=predictor, schema=predictor.schema,
                       settings=recorded_serving(metadata, str(stored.tag)),
                       metadata=metadata, created_at=stored.creation_time.isoformat())


_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def _without_absolute_paths(value: Any) -> Any:
    """``value`` with every string that is an absolute path made harmless, at any depth."""
    if isinstance(value, dict):
        return {k: _without_absolute_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_absolute_paths(v) for v in value]
    if not isinstance(value, str):
        return value
    path = value[len("file://"):] if value.startswith("file://") else value
    if _WINDOWS_ABSOLUTE.match(path):
        return PureWindowsPath(path).name
    if not path.startswith("/"):
        return value
    try:
        return PurePosixPath(path).relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return PurePosixPath(path).name
