"""Split + mask: the validated table becomes the arrays every later task reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from selftrain.config import PipelineConfig
from selftrain.schema import FeatureSchema
from selftrain.splits import split_frame
from tasks.workspace import Workspace, run_key


@dataclass(frozen=True)
class PreparedData:
    """What later tasks need to find the arrays: small, so it travels between tasks."""

    key: str
    root: str
    fingerprint: str
    mode: str
    schema: FeatureSchema
    n_train: int
    n_labeled: int
    n_val: int
    n_test: int

    @property
    def workspace(self) -> Workspace:
        return Workspace(Path(self.root))


@task(name="mask", cache_policy=NONE)
def mask_table(
    frame: pd.DataFrame, fingerprint: str, config: PipelineConfig, work_dir: str
) -> PreparedData:
    """Stratified, seeded test/validation split from labeled rows; in simulation mode
    hide all but ``masking.labeled_fraction`` of the training labels."""
    splits = split_frame(frame, config)
    key = run_key(fingerprint, config)
    workspace = Workspace.for_run(work_dir, key)
    workspace.save_arrays(splits.arrays())
    d = config.data
    features = frame.iloc[:0].drop(columns=[d.label_column, d.id_column])  # names + dtypes only
    classes = np.unique(np.concatenate([splits.y_train_true[splits.y_train_true != -1],
                                        splits.y_test, splits.y_val]))
    return PreparedData(
        key=key,
        root=str(workspace.root),
        fingerprint=fingerprint,
        mode=splits.mode,
        schema=FeatureSchema.from_frame(features, classes),
        n_train=len(splits.y_train),
        n_labeled=int((splits.y_train != -1).sum()),
        n_val=len(splits.y_val),
        n_test=len(splits.y_test),
    )
