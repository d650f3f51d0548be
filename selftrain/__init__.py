"""selftrain: self-training (pseudo-labelling) for tables with few labels."""

from selftrain.columns import ColumnRoles, infer_roles, make_preprocessor, tabular_pipeline
from selftrain.config import PipelineConfig, SelfTrainingSettings, load_config
from selftrain.estimator import SelfTrainingClassifier
from selftrain.estimators import make_estimator
from selftrain.masking import mask_labels
from selftrain.recommended import build_classifier, recommended_classifier
from selftrain.rounds import RoundState, initial_state, run_round
from selftrain.selection import SelectionPolicy

__all__ = [
    "ColumnRoles",
    "PipelineConfig",
    "RoundState",
    "SelectionPolicy",
    "SelfTrainingClassifier",
    "SelfTrainingSettings",
    "build_classifier",
    "infer_roles",
    "initial_state",
    "load_config",
    "make_estimator",
    "make_preprocessor",
    "mask_labels",
    "recommended_classifier",
    "run_round",
    "tabular_pipeline",
]

__version__ = "0.1.0"
