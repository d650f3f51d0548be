"""Which promoted model the service answers with, and what it tells clients about it.

The tag is resolved once, at import time of the service, so that the class-level
model reference names one exact model: ``bentoml build`` packs that one, and a
server never starts without a model.
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
import pandas as pd
import yaml
from bentoml.exceptions import BentoMLException

from selftrain import load_config
from selftrain.columns import split_preprocessor
from selftrain.config import ServingSettings
from selftrain.integrity import RECORD_KEY, IntegrityError, verify_artifacts
from selftrain.lines import production_stack, store_home
from selftrain.record import SCHEMA_KEYS, PackagedModel
from selftrain.schema import FeatureSchema

logger = logging.getLogger("selftrain.serving")
TAG_ENV = "SELFTRAIN_MODEL_TAG"
CONFIG_ENV = "SELFTRAIN_CONFIG"


class NoPromotedModel(RuntimeError):
    """The store holds no model the service could serve; the message says what to do."""


def load_serving_settings() -> ServingSettings:
    """``serving`` section of params.yaml (or $SELFTRAIN_CONFIG); defaults when absent.
    ``model_name`` is the configuration's model line (``project`` or the table's name when
    unset)."""
    path = Path(os.environ.get(CONFIG_ENV, "params.yaml"))
    config = load_config(path if path.exists() else None)
    return config.serving.model_copy(update={"model_name": config.model_line})


def resolve_model_tag(model_name: str, requested: str | None = None) -> str:
    """The exact tag to serve: ``requested`` if given (``name:version`` or a version),
    else the production model of the line ``model_name`` (``selftrain.lines``), or the one
    before it when it fails its integrity check."""
    if requested:
        tag = requested if ":" in requested else f"{model_name}:{requested}"
        try:
            model = bentoml.models.get(tag)
        except BentoMLException:
            raise NoPromotedModel(
                f"model {tag!r} (from ${TAG_ENV}) is not in the BentoML model store "
                f"at {_store_home()}"
            ) from None
        try:
            verify_artifacts(model.path, model.info.metadata.get(RECORD_KEY), f"model {tag}")
        except IntegrityError as exc:
            raise NoPromotedModel(str(exc)) from None
        return str(model.tag)
    promoted = production_stack(model_name)
    if not promoted:
        raise NoPromotedModel(
            f"no promoted model {model_name!r} in the BentoML model store at {_store_home()}: "
            "run the training pipeline until a model passes the gate, or point "
            "BENTOML_HOME at the store that holds it"
        )
    for tag in promoted:
        try:
            model = bentoml.models.get(tag)
            verify_artifacts(model.path, model.info.metadata.get(RECORD_KEY), f"model {tag}")
        except BentoMLException as exc:
            logger.error("model %s: unreadable (%s); trying the next production model", tag,
                         str(exc)[:160])
            continue
        except IntegrityError as exc:
            logger.error("%s; trying the next production model", exc)
            continue
        return str(model.tag)
    raise NoPromotedModel(
        f"no production model {model_name!r} in the BentoML model store at {_store_home()} "
        "passes its integrity check (see the log); promote a model with this installation"
    )


def packed_model_tag(model_name: str) -> str | None:
    """In a built Bento, the tag of the model it packed; None when run from the project.

    A Bento keeps its code in ``src/`` next to ``bento.yaml``: it serves what it packed,
    whatever newer model the local store may hold.
    """
    src = Path(__file__).resolve().parents[1]
    bento_yaml = src.parent / "bento.yaml"
    if src.name != "src" or not bento_yaml.is_file():
        return None
    info = yaml.safe_load(bento_yaml.read_text()) or {}
    entries = [m for svc in info.get("services") or [] for m in svc.get("models") or []]
    entries += info.get("models") or []
    tags = [str(m.get("tag", "")) for m in entries]
    return next((t for t in tags if t.split(":")[0] == model_name), None)


@dataclass(frozen=True)
class LoadedModel:
    """The estimator, its feature contract and the store facts clients may ask for."""

    tag: str
    estimator: Any
    schema: FeatureSchema
    metadata: dict[str, Any]
    created_at: str
    labels_from_proba: bool

    def describe(self) -> dict[str, Any]:
        """The body of GET /metadata: the schema, the metrics and the lineage.

        No absolute filesystem path leaves the server: a metadata value that is one
        (``data_path``, ``params_path``, ``config.data.path``, ...) becomes its path
        relative to the project when it lies inside it, else its file name.
        """
        extra = {
            k: _without_absolute_paths(v)
            for k, v in self.metadata.items()
            if k not in _SCHEMA_KEYS
        }
        return {
            "model_tag": self.tag,
            "classes": self.schema.classes,
            "feature_names": self.schema.feature_names,
            "dtypes": self.schema.dtypes,
            "columns": self.schema.columns(),
            "stored_at": self.created_at,
            **extra,
        }


def open_model(stored) -> LoadedModel:
    """Load a model-store entry written by the package task."""
    record = PackagedModel.from_metadata(stored.tag.name, dict(stored.info.metadata))
    estimator, schema = record.load(stored.path, f"model {stored.tag}")
    return LoadedModel(
        tag=str(stored.tag),
        estimator=estimator,
        schema=schema,
        metadata=dict(stored.info.metadata),
        created_at=stored.creation_time.isoformat(),
        labels_from_proba=labels_follow_proba(estimator),
    )


def labels_follow_proba(estimator) -> bool:
    """True when ``predict`` is the argmax of ``predict_proba``, so one call gives both.

    It holds for forests, boosting, linear models, kNN and calibrated models; not for
    an SVC with Platt scaling, whose ``predict`` uses the decision function.
    """
    inner = estimator
    while True:
        if hasattr(inner, "steps"):
            inner = inner.steps[-1][1]
        elif hasattr(inner, "estimator_"):
            inner = inner.estimator_
        else:
            break
    return type(inner).__name__ not in {"SVC", "NuSVC"}


def predict_rows(model: LoadedModel, rows: np.ndarray) -> np.ndarray:
    """Column 0: index of the predicted class in ``classes_``; the rest: probabilities.
    A model of raw records (preprocessor first) gets them as a frame of named columns."""
    estimator = model.estimator
    if split_preprocessor(estimator)[0] is not None:
        rows = pd.DataFrame(rows, columns=model.schema.feature_names)
    proba = estimator.predict_proba(rows)
    if model.labels_from_proba:
        index = proba.argmax(axis=1)
    else:
        index = np.searchsorted(estimator.classes_, estimator.predict(rows))
    return np.column_stack([index.astype(np.float64), proba])


_SCHEMA_KEYS = set(SCHEMA_KEYS)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def _without_absolute_paths(value: Any) -> Any:
    """``value`` with every string that is an absolute path made harmless, at any depth."""
    if isinstance(value, dict):
        return {k: _without_absolute_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_absolute_paths(v) for v in value]
    if isinstance(value, str):
        return _public_path(value)
    return value


def _public_path(text: str) -> str:
    path = text[len("file://"):] if text.startswith("file://") else text
    if _WINDOWS_ABSOLUTE.match(path):
        return PureWindowsPath(path).name
    if not path.startswith("/"):
        return text
    posix = PurePosixPath(path)
    try:
        return posix.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return posix.name


def _store_home() -> str:
    return str(store_home())
