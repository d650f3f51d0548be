"""The answers of the endpoints (their requests: ``selftrain.row_rules``)."""

from __future__ import annotations

from pydantic import BaseModel


class Probabilities(BaseModel):
    """The answer of POST /predict_proba."""

    model_tag: str
    classes: list[int | str]
    probabilities: list[list[float]]


class Prediction(Probabilities):
    """The answer of POST /predict: labels beside their probabilities."""

    labels: list[int | str]
