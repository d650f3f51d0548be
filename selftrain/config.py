"""The one configuration object: read from ``params.yaml``, shown as a form in the
Prefect UI, tracked by DVC as params, passed to every task.

Every default lives here and nowhere else. The defaults of ``SelfTrainingSettings``
are the configuration that ``benchmarks/accuracy.py`` reports as recommended.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from selftrain.choices import CALIBRATIONS, CRITERIA, STOPPING, TEACHERS
from selftrain.estimators import AUTO, ESTIMATOR_NAMES

EstimatorName = Literal[(AUTO, *ESTIMATOR_NAMES)]  # the registry's names, and "auto"


class _Section(BaseModel):
    # Unknown keys are typos: refuse them instead of silently ignoring them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSettings(_Section):
    """Where the table is and which columns carry the id and the label."""

    path: str = Field("data/raw/digits.csv", description="CSV or Parquet table")
    roots: list[str] = Field(
        ["data"], description="folders a deployment's runs may read tables from (a data.path "
        "given as a run parameter must lie under one); set in params.yaml only")
    label_column: str = Field("label", description="label column; -1 or empty = unlabeled")
    id_column: str = Field("id", description="unique row id column")
    classes: list[int | str] | None = Field(
        None, description="declared label set; default: the labels seen in the table"
    )
    min_rows: int = Field(20, ge=1, description="fewest rows a table may have")
    max_rows: int = Field(5_000_000, ge=1, description="most rows a table may have")
    max_columns: int = Field(10_000, ge=1, description="most columns a table may have")
    max_file_mb: float = Field(
        2048, gt=0, description="largest table file (MB) read; checked before reading")
    min_labeled_per_class: int = Field(
        3, ge=1, description="fewest labeled rows each class must have"
    )
    features: list[str] | None = Field(
        None, description="feature columns; default: every column but the id and the label")
    categorical: list[str] | None = Field(
        None, description="categorical columns; default: inferred (text, boolean, category)")
    datetime: list[str] | None = Field(
        None, description="date columns; default: inferred (ISO-8601 dates)")
    drop: list[str] = Field([], description="columns to ignore")
    na_values: list[str] = Field(
        [], description="extra tokens that mean missing when reading the table, e.g. ['?', 'n/a']")
    max_missing: float = Field(
        0.5, ge=0, lt=1, description="largest share of missing values a feature column may have")
    max_categories: int = Field(
        20, ge=2, description="categories one-hot encoded per column; rarer ones are grouped")
    min_category_count: int = Field(
        5, ge=1, description="categories seen in fewer training rows are grouped as infrequent")
    max_distinct: int = Field(
        1000, ge=2, description="most distinct values a categorical column may have")


class SplitSettings(_Section):
    """Held-out rows, always drawn from labeled rows, stratified and seeded."""

    test_size: float = Field(0.25, gt=0, lt=1, description="share of labeled rows for test")
    validation_size: float = Field(
        0.1, ge=0, lt=1, description="share of the remaining labeled rows for validation"
    )


class MaskingSettings(_Section):
    """Simulation mode hides labels of a fully labeled table to measure honestly."""

    mode: Literal["auto", "simulate", "real"] = Field(
        "auto", description="auto: simulate when the table has no unlabeled rows"
    )
    labeled_fraction: float = Field(
        0.1, gt=0, le=1, description="share of training rows whose label is kept"
    )


class SelfTrainingSettings(_Section):
    """The self-training loop. Defaults are the benchmark's recommended configuration."""

    # "auto": the forest unless another entry beats it beyond noise on the labeled rows
    # (benchmarks/auto_rules.py: never below the forest by > 0.01 in a cell, on tables it
    # was tuned on and on tables it never saw).
    base_estimator: EstimatorName = Field(
        "auto", description="the estimator that self-trains and is the labeled-only "
        "fallback; 'auto': the fallback is the forest unless another registry entry beats it "
        "beyond noise in cross-validation on the labeled rows; the forest self-trains")
    criterion: Literal[CRITERIA] = "k_best"
    threshold: float = Field(0.75, ge=0, le=1)
    k_best: float = Field(
        0.1, gt=0, description="rows added per round: a count, or a share (<1) of the pool"
    )
    max_rounds: int = Field(20, ge=0, description="most self-training rounds")
    balanced: bool = Field(True, description="cap each class's share of pseudo-labels at its prior")
    calibration: Literal[CALIBRATIONS] | None = None
    teacher: Literal[TEACHERS] | None = Field(
        "label_spreading", description="blend a kNN-graph teacher into the confidences"
    )
    teacher_weight: float = Field(0.5, ge=0, le=1)
    stopping: Literal[STOPPING] | None = Field(
        "cv", description="'cv': keep round 0 when cross-validation shows self-training hurts "
        "(estimator use; the pipeline scores its own validation split)"
    )
    # Gains arrive late: on digits the first rounds add easy rows and only a mostly
    # labeled pool lifts accuracy, so stopping needs a long patience (measured).
    patience: int = Field(10, ge=1, description="rounds without improvement before stopping")
    n_jobs: int | None = Field(-1, description="guard folds run in parallel (joblib; -1 = all "
                               "cores)")


class GateSettings(_Section):
    """What a candidate must reach before it replaces the production model."""

    min_accuracy: float = Field(0.5, ge=0, le=1)
    min_gain: float = Field(0.0, ge=-1, le=1, description="over the labeled-only baseline")
    max_regression: float = Field(0.01, ge=0, le=1, description="allowed drop vs the champion")


class ServingSettings(_Section):
    model_name: str | None = Field(
        None, description="the model line in the store; default: `project`, else the table's "
        "file name (data/raw/churn.csv -> churn)")
    max_batch_rows: int = Field(1000, ge=1)
    port: int = Field(3000, ge=1, le=65535)


class PipelineConfig(_Section):
    """Everything one pipeline run needs; the file ``params.yaml`` holds one of these."""

    seed: int = Field(0, ge=0, description="seeds splits, masking and estimators")
    project: str | None = Field(
        None, description="the problem's name: names its model line unless serving.model_name "
        "is set; default: the table's file name")
    data: DataSettings = DataSettings()
    split: SplitSettings = SplitSettings()
    masking: MaskingSettings = MaskingSettings()
    self_training: SelfTrainingSettings = SelfTrainingSettings()
    gate: GateSettings = GateSettings()
    serving: ServingSettings = ServingSettings()

    @model_validator(mode="after")
    def _rows_bounds(self) -> PipelineConfig:
        if self.data.min_rows > self.data.max_rows:
            raise ValueError(
                f"data.min_rows ({self.data.min_rows}) exceeds data.max_rows ({self.data.max_rows})"
            )
        return self

    @property
    def model_line(self) -> str:
        """The model line this configuration trains and serves: ``serving.model_name``, else
        ``project``, else the table's file name. A candidate competes only with the champion
        of its own line, so two tables never share a line by default."""
        return line_name(self.serving.model_name or self.project or Path(self.data.path).stem)


# What a deployment's parameter form may not change: the gate's thresholds and the data
# roots come only from the params file on the machine that serves the deployment.
LOCKED_KEYS = ("gate", "data.roots")


def editable_model(model: type[BaseModel] = None, prefix: str = "") -> type[BaseModel]:
    """``model`` (default: ``PipelineConfig``) without the ``LOCKED_KEYS``: the type of a
    deployment's ``config`` parameter, so the UI's form and the server's schema check
    (which refuses unknown keys) leave no way to set them."""
    model = model or PipelineConfig
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key in LOCKED_KEYS:
            continue
        annotation = field.annotation
        if any(k.startswith(f"{key}.") for k in LOCKED_KEYS):
            sub = editable_model(annotation, f"{key}.")
            fields[name] = (sub, sub())
        else:
            fields[name] = (annotation, field)
    return create_model(f"Editable{model.__name__}", __base__=_Section, __doc__=model.__doc__,
                        **fields)


def with_locked_settings(editable: BaseModel, locked_from: PipelineConfig) -> PipelineConfig:
    """The full configuration of a deployment's run: its editable parameters, with the
    locked keys taken from ``locked_from`` (the params file)."""
    raw = editable.model_dump(mode="json")
    raw["gate"] = locked_from.gate.model_dump(mode="json")
    raw.setdefault("data", {})["roots"] = list(locked_from.data.roots)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source="run parameters")) from None


def check_data_root(config: PipelineConfig, base: str | Path = ".") -> Path:
    """``data.path`` resolved (links followed); ``ConfigError`` unless it lies under one of
    ``data.roots``: a run parameter must not point the pipeline at any file on the machine."""
    base = Path(base)
    path = Path(os.path.realpath(base / config.data.path))
    roots = [Path(os.path.realpath(base / root)) for root in config.data.roots]
    if not any(path.is_relative_to(root) for root in roots):
        shown = config.data.path if len(config.data.path) <= 60 else config.data.path[:57] + "..."
        raise ConfigError(f"data.path {shown!r} is outside the allowed data roots "
                          f"({', '.join(config.data.roots)}): refused. Put the table under one "
                          "of them, or add its folder to data.roots in params.yaml")
    return path


def line_name(text: str) -> str:
    """``text`` as a model-store name (lowercase letters, digits, ``-``, ``_``, ``.``; at
    most 63 characters, starting and ending with a letter or digit)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower())
    name = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", name[:63])
    if not name:
        raise ConfigError(f"cannot name a model line after {text!r}: set project or "
                          "serving.model_name")
    return name


class ConfigError(ValueError):
    """A configuration a user wrote is wrong; the message says which key and why."""


# The params file of a project. When it is absent, the defaults apply; any other file named
# explicitly must exist.
PARAMS_FILE = Path("params.yaml")


def params_file(path: str | Path | None) -> Path | None:
    """The params file to read: ``path``, or None (the defaults) when it is the default
    ``params.yaml`` and that file is absent."""
    if path is None or (Path(path) == PARAMS_FILE and not PARAMS_FILE.exists()):
        return None
    return Path(path)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> PipelineConfig:
    """Read the params file (see ``params_file``; ``None``: the defaults) and apply
    ``key=value`` overrides with dotted keys, like ``dvc exp run -S``."""
    raw: dict[str, Any] = {}
    path = params_file(path)
    if path is not None and Path(path).exists():
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    elif path is not None:
        raise ConfigError(f"config file {path} does not exist")
    overridden = set()
    for item in overrides or []:
        overridden.add(_apply_override(raw, item))
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=str(path or "defaults"),
                                                  overridden=overridden)) from None


def format_validation_error(exc: ValidationError, source: str,
                            overridden: set[str] | None = None) -> str:
    """One line per wrong key: ``self_training.threshold: Input should be ... (got 2)``,
    attributed to ``--set`` when an override set it, with a "did you mean" for a typo."""
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
        if err["type"] == "extra_forbidden":
            got = " (unknown key" + _did_you_mean(err["loc"]) + ")"
        by_set = any(o == key or o.startswith(f"{key}.") for o in overridden or ())
        where = ", set by --set" if by_set else ""
        lines.append(f"  {key}: {err['msg']}{got}{where}")
    return "\n".join(lines)


def parameter_table(model: type[BaseModel] = None, prefix: str = "") -> list[tuple]:
    """(dotted key, default, description) of every parameter, from the config model itself:
    what ``selftrain params`` prints, so it can never disagree with the code."""
    model = model or PipelineConfig
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += parameter_table(annotation, f"{key}.")
        else:
            rows.append((key, field.default, field.description or ""))
    return rows


# Keys that do nothing under some settings: (key, when it is inert, why).
_INERT = (
    ("self_training.threshold", lambda c: c.self_training.criterion == "k_best",
     "criterion is k_best (k_best sets each round's size)"),
    ("self_training.k_best", lambda c: c.self_training.criterion == "threshold",
     "criterion is threshold"),
    ("self_training.teacher_weight", lambda c: c.self_training.teacher is None,
     "teacher is off"),
    ("self_training.patience", lambda c: c.self_training.stopping != "holdout",
     "stopping is not holdout"),
)


def inert_settings(config: PipelineConfig) -> list[str]:
    """Warnings for parameters set away from their default that have no effect under the
    other settings, e.g. ``self_training.threshold=0.9`` with ``criterion=k_best``."""
    warnings = []
    defaults = PipelineConfig()
    for key, inert, why in _INERT:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if inert(config) and value != getattr(getattr(defaults, section), name):
            warnings.append(f"{key}={value!r} has no effect: {why}")
    return warnings


def _did_you_mean(loc: tuple) -> str:
    model: type[BaseModel] = PipelineConfig
    for part in loc[:-1]:
        annotation = model.model_fields.get(str(part))
        if annotation is None or not isinstance(annotation.annotation, type):
            return ""
        model = annotation.annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    prefix = ".".join(str(p) for p in loc[:-1])
    return f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?" if close else ""


def _apply_override(raw: dict[str, Any], item: str) -> str:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value, e.g. seed=1")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return ".".join(parts)


def dump_config(config: PipelineConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
