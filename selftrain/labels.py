"""What "unlabeled" means, in one place: ``-1`` (as a number or as text), empty, null, NaN.

The data contract, the table reader, the splits and the round state all ask this module,
so that a label that one of them calls unlabeled is unlabeled for all of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNLABELED = -1
UNLABELED_TEXT = ("", "-1", "-1.0")


def is_unlabeled(labels) -> np.ndarray:
    """Boolean mask of the rows without a label (any of the forms above)."""
    series = labels if isinstance(labels, pd.Series) else pd.Series(np.asarray(labels,
                                                                                dtype=object))
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype):
        return (series.isna() | (series == UNLABELED)).to_numpy()
    text = series.astype("string").str.strip()
    return (series.isna() | text.isin(UNLABELED_TEXT)).fillna(True).to_numpy(dtype=bool)


def unlabeled_markers(classes: list | None) -> list:
    """Label values besides empty that mean "no label": -1, and "-1" unless classes are ints."""
    if classes is not None and not any(isinstance(c, str) for c in classes):
        return [UNLABELED]
    return [UNLABELED, "-1"]
