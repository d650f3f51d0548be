"""The embedded default table: scikit-learn's digits with an id and a label column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.datasets import load_digits


def digits_frame() -> pd.DataFrame:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{i}" for i in range(digits.data.shape[1])])
    frame.insert(0, "label", digits.target)
    frame.insert(0, "id", range(len(frame)))
    return frame


def export_digits(path: str | Path = "data/raw/digits.csv") -> Path:
    """Write the digits table as CSV (what the DVC ``prepare`` stage produces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    digits_frame().to_csv(tmp, index=False)
    tmp.replace(path)
    return path
