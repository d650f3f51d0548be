"""Tables for the data-contract tests: a small valid table to break, and real digits."""


import numpy as np
import pandas as pd
import pytest

from selftrain.config import PipelineConfig  # noqa: E402

N_FEATURES = 4


@pytest.fixture(scope="session")
def reports_dir(tmp_path_factory):
    """One Data Docs site for the session: tests read pages, never compare indexes."""
    return tmp_path_factory.mktemp("reports")


@pytest.fixture
def good_frame():
    """40 rows, 4 classes with 8 labeled rows each, the last 8 rows unlabeled (-1)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, N_FEATURES)),
                         columns=[f"f{i}" for i in range(N_FEATURES)])
    labels = np.arange(40) % 4
    labels[32:] = -1
    frame.insert(0, "label", labels)
    frame.insert(0, "id", np.arange(100, 140))
    return frame


@pytest.fixture(scope="session")
def make_config():
    """``make_config(path, **data_settings)`` -> a PipelineConfig for that table."""

    def build(path, **data) -> PipelineConfig:
        return PipelineConfig.model_validate({"data": {"path": str(path), **data}})

    return build
