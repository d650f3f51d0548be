"""Split + mask: the validated table becomes the arrays every later task reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from selftrain.columns import (
    ColumnRoles,
    known_categories,
    learned_medians,
    split_preprocessor,
    with_preprocessor,
)
from selftrain.config import PipelineConfig
from selftrain.recommended import build_classifier
from selftrain.schema import FeatureSchema
from selftrain.splits import split_frame
from tasks.validate import ValidatedTable
from tasks.workspace import Workspace, run_key


@dataclass(frozen=True)
class PreparedData:
    """What later tasks need to find the arrays: small, so it travels between tasks."""

    key: str
    root: str
    fingerprint: str
    mode: str
    roles: ColumnRoles
    schema: FeatureSchema
    n_train: int
    n_labeled: int
    n_val: int
    n_test: int

    @property
    def workspace(self) -> Workspace:
        return Workspace(Path(self.root))

    def served_model(self, model, config: PipelineConfig):
        """A round's model as it is packaged and served: behind the preprocessor, refitted
        on the same raw training rows (deterministic, so the very one the rounds used)."""
        X_raw = self.workspace.load_frame("X_train_raw")
        return with_preprocessor(new_preprocessor(config, self.roles).fit(X_raw), model)


def new_preprocessor(config: PipelineConfig, roles: ColumnRoles):
    """The unfitted preprocessor for ``roles``, as ``build_classifier`` makes it."""
    clf = build_classifier(config.self_training, config.seed, roles, config.data)
    return split_preprocessor(clf.estimator)[0]


@task(name="mask", cache_policy=NONE)
def mask_table(table: ValidatedTable, config: PipelineConfig, work_dir: str) -> PreparedData:
    """Stratified, seeded test/validation split from labeled rows; in simulation mode
    hide all but ``masking.labeled_fraction`` of the training labels. The preprocessor is
    fitted on every training row (labeled or not) and the rounds read its encoded arrays;
    the raw frames stay beside them for the packaged model's checks."""
    features = table.roles.features
    splits = split_frame(table.frame, config, features)
    key = run_key(table.fingerprint, config)
    workspace = Workspace.for_run(work_dir, key)
    workspace.save_frames({f"{name}_raw": frame for name, frame in splits.frames().items()})
    preprocessor = new_preprocessor(config, table.roles).fit(splits.X_train)
    encoded = {name: np.asarray(preprocessor.transform(frame), dtype=np.float64)
               for name, frame in splits.frames().items()}
    workspace.save_arrays(splits.arrays() | encoded)
    classes = np.unique(np.concatenate([splits.y_train_true[splits.y_train_true != -1],
                                        splits.y_test, splits.y_val]))
    schema = FeatureSchema.from_frame(table.frame[features].iloc[:0], classes, table.roles,
                                      known_categories(preprocessor),
                                      learned_medians(preprocessor))
    return PreparedData(
        key=key,
        root=str(workspace.root),
        fingerprint=table.fingerprint,
        mode=splits.mode,
        roles=table.roles,
        schema=schema,
        n_train=len(splits.y_train),
        n_labeled=int((splits.y_train != -1).sum()),
        n_val=len(splits.y_val),
        n_test=len(splits.y_test),
    )
