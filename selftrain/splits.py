"""Split a validated table into train pool / validation / test, and mask in simulation mode.

Validation and test rows are always drawn from labeled rows, stratified and seeded,
so every score is measured against real labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from selftrain.config import PipelineConfig
from selftrain.labels import is_unlabeled
from selftrain.masking import mask_labels


@dataclass
class Splits:
    """Arrays for one run. ``y_train`` has -1 for unlabeled rows; ``y_train_true`` holds
    the hidden truth in simulation mode (-1 where unknown)."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    y_train_true: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    mode: str

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    def frames(self) -> dict[str, pd.DataFrame]:
        return {k: v for k, v in vars(self).items() if isinstance(v, pd.DataFrame)}


def split_frame(frame: pd.DataFrame, config: PipelineConfig,
                features: list[str] | None = None) -> Splits:
    """The frame's features (raw, as frames) and labels as train/validation/test splits
    (see ``Splits``). ``features``: the feature columns; default all but id and label."""
    d = config.data
    if features is None:
        features = [c for c in frame.columns if c not in (d.label_column, d.id_column)]
    X = frame[features].reset_index(drop=True)
    unlabeled = is_unlabeled(frame[d.label_column])
    y = encode_labels(frame[d.label_column], unlabeled)
    mode = config.masking.mode
    if mode == "auto":
        mode = "real" if unlabeled.any() else "simulate"
    labeled = np.flatnonzero(~unlabeled)
    seed = config.seed
    rest, test = train_test_split(
        labeled, test_size=config.split.test_size, random_state=seed, stratify=y[labeled]
    )
    val = np.array([], dtype=np.int64)
    if config.split.validation_size > 0:
        rest, val = train_test_split(
            rest, test_size=config.split.validation_size, random_state=seed, stratify=y[rest]
        )
    train = np.sort(np.concatenate([rest, np.flatnonzero(unlabeled)]))
    y_true = np.where(unlabeled[train], -1, y[train])
    y_train = y_true.copy()
    if mode == "simulate":
        y_train = mask_labels(y_true, config.masking.labeled_fraction, random_state=seed)
    val, test = np.sort(val), np.sort(test)
    return Splits(_rows(X, train), y_train, y_true, _rows(X, val), y[val], _rows(X, test),
                  y[test], mode)


def _rows(X: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    return X.iloc[index].reset_index(drop=True)


def encode_labels(labels: pd.Series, unlabeled: np.ndarray) -> np.ndarray:
    """Integer labels stay integers (-1 = unlabeled); anything else becomes an object array."""
    known = labels[~unlabeled]
    numeric = pd.to_numeric(known, errors="coerce")
    if numeric.notna().all() and (numeric % 1 == 0).all():
        out = np.full(len(labels), -1, dtype=np.int64)
        out[~unlabeled] = numeric.astype(np.int64).to_numpy()
        return out
    out = np.full(len(labels), -1, dtype=object)
    out[~unlabeled] = known.astype(str).to_numpy()
    return out
