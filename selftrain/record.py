"""The record of a packaged model: everything a model-store entry says about its model.

One type for both sides. Packaging builds it and writes it as the entry's labels and
metadata; the gate, serving, ``selftrain models`` and the test fixtures read it back with
``PackagedModel.from_metadata``. Every metadata key is named here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from selftrain.config import ServingSettings
from selftrain.integrity import RECORD_KEY
from selftrain.schema import FeatureSchema, load_model, save_model

# What makes two models the same model: the data, the parameters and the code.
IDENTITY = ("data_fingerprint", "params_hash", "git_commit")
# Metadata keys that repeat the feature contract (schema.json, which the model is loaded
# with, is the source); /metadata shows them from the loaded schema instead.
SCHEMA_KEYS = ("classes", "feature_names", "dtypes", "columns")
DROPPED_KEY = "dropped_columns"
CONFIG_KEY = "config"
PROMOTED_AT_KEY = "promoted_at"
INFERENCE_KEY = "inference"  # which form serves (onnx or sklearn) and why
LINE_LABEL = "line"
RUN_LABEL = "run"


class PackagedModel(BaseModel):
    """A packaged model's record: its line, run, feature contract, metrics and lineage
    (``facts``), the configuration it was trained with, and the signed hashes of its files."""

    line: str
    run: str | None = None
    features: FeatureSchema
    facts: dict[str, Any] = {}  # scalar metrics and lineage: test_accuracy, data_fingerprint...
    config: dict[str, Any] = {}
    promoted_at: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"))
    integrity: dict | None = None

    @classmethod
    def build(cls, line: str, run: str | None, features: FeatureSchema, metrics: dict,
              lineage: dict, config: dict) -> PackagedModel:
        """The record of a model about to be packaged (unsigned until ``save``)."""
        scalar = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
        return cls(line=line, run=run, features=features, facts={**scalar, **lineage},
                   config=config)

    def labels(self) -> dict[str, str]:
        return {LINE_LABEL: self.line, **({RUN_LABEL: self.run} if self.run else {})}

    def metadata(self) -> dict[str, Any]:
        """The BentoML metadata of the entry: flat, basic types only (no None)."""
        features = self.features
        return _without_none({
            **self.facts,
            CONFIG_KEY: self.config,
            "classes": features.classes,
            "feature_names": features.feature_names,
            "dtypes": features.dtypes,
            "columns": features.columns(),
            DROPPED_KEY: features.dropped,
            PROMOTED_AT_KEY: self.promoted_at,
            RECORD_KEY: self.integrity,
        })

    @classmethod
    def from_metadata(cls, line: str, metadata: dict, labels: dict | None = None
                      ) -> PackagedModel:
        """The record of a stored entry from its metadata (and labels)."""
        known = {*SCHEMA_KEYS, DROPPED_KEY, CONFIG_KEY, PROMOTED_AT_KEY, RECORD_KEY}
        columns = metadata.get("columns") or []
        features = FeatureSchema(
            feature_names=list(metadata.get("feature_names") or []),
            dtypes=list(metadata.get("dtypes") or []),
            classes=list(metadata.get("classes") or []),
            roles={c["name"]: c["role"] for c in columns if "role" in c},
            categories={c["name"]: c["categories"] for c in columns if "categories" in c},
            medians={c["name"]: c["fills_missing_with"] for c in columns
                     if "fills_missing_with" in c},
            dropped=dict(metadata.get(DROPPED_KEY) or {}),
        )
        return cls(line=line, run=(labels or {}).get(RUN_LABEL), features=features,
                   facts={k: v for k, v in metadata.items() if k not in known},
                   config=dict(metadata.get(CONFIG_KEY) or {}),
                   promoted_at=str(metadata.get(PROMOTED_AT_KEY, "")),
                   integrity=metadata.get(RECORD_KEY))

    def identity(self) -> tuple | None:
        """(data fingerprint, params hash, git commit), or None when the commit is unknown:
        without the code's version two models cannot be called the same."""
        values = tuple(self.facts.get(key) for key in IDENTITY)
        return None if values[-1] is None else values

    def save(self, directory: str | Path, model, held_out: list | None = None) -> PackagedModel:
        """Write the model and its schema (and, with ``held_out`` rows, its verified compiled
        form) into ``directory``; the record, signed."""
        return self.model_copy(update={"integrity": save_model(directory, model, self.features,
                                                               held_out=held_out)})

    def load(self, directory: str | Path, what: str):
        """(estimator, FeatureSchema), verified against this record's signed hashes first."""
        return load_model(directory, self.integrity, what)


def _without_none(value):
    # BentoML metadata accepts basic types only: a missing value is an absent key.
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def recorded_serving(metadata: dict, tag: str) -> ServingSettings:
    """The ``serving`` section of the config the model was trained with (not the working
    directory's params.yaml); the defaults, with a log line, when it recorded none or
    one this version cannot read."""
    section = (metadata.get(CONFIG_KEY) or {}).get("serving")
    try:
        return ServingSettings.model_validate(section or {})
    except ValidationError as exc:
        logging.getLogger("selftrain.serving").warning(
            "%s: recorded serving settings unreadable (%s errors): using defaults", tag,
            exc.error_count())
        return ServingSettings()
