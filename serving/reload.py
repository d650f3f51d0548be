"""Hot reload: a running server follows the production model of its line in the store.

Every ``$SELFTRAIN_RELOAD_SECONDS`` (default 10; 0 turns it off) a task on the
server's event loop asks the store, in a worker thread, for the production model of
its line (selftrain.lines). A new tag is loaded in full and
checked (schema against classes, one probe prediction) in that thread too; only then
is it swapped in, with one assignment on the event loop. Requests in flight finish on
the model they started with; every answer names its model, so a client sees the
switch. A model that fails its check is logged, skipped, and never retried.

No reload when a tag is pinned (``$SELFTRAIN_MODEL_TAG``) or when serving a built
Bento: both serve exactly one model.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping

import anyio
import bentoml
import numpy as np

from serving.model import TAG_ENV, LoadedModel, NoPromotedModel, open_model, predict_rows
from serving.model import resolve_model_tag as newest_model_tag

RELOAD_ENV = "SELFTRAIN_RELOAD_SECONDS"
DEFAULT_RELOAD_SECONDS = 10.0

logger = logging.getLogger("selftrain.serving")


class ReloadRefused(RuntimeError):
    """A newer model that the service will not serve; the message says why."""


def reload_interval(environ: Mapping[str, str] = os.environ, pinned: bool = False) -> float | None:
    """Seconds between store checks, or None when this server never reloads.

    Raises ValueError naming the variable when its value is not a number of seconds.
    """
    if pinned or environ.get(TAG_ENV):
        return None
    raw = environ.get(RELOAD_ENV, "").strip()
    if not raw:
        return DEFAULT_RELOAD_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"${RELOAD_ENV} must be a number of seconds >= 0 (0: off), got {raw!r}")
    return seconds or None


def load_checked(tag: str) -> LoadedModel:
    """The store entry ``tag``, loaded and checked; ReloadRefused if it cannot serve."""
    try:
        model = open_model(bentoml.models.get(tag))
    except Exception as exc:  # a broken entry must never stop the server
        raise ReloadRefused(f"cannot load {tag}: {type(exc).__name__}: {exc}") from None
    check_model(model)
    return model


def check_model(model: LoadedModel) -> None:
    """The model answers a probe row with one finite probability per schema class."""
    estimator, schema = model.estimator, model.schema
    if not hasattr(estimator, "predict_proba"):
        raise ReloadRefused(f"{model.tag}: the estimator has no predict_proba")
    fitted = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    if fitted != list(schema.classes):
        raise ReloadRefused(f"{model.tag}: classes {fitted} differ from the schema's")
    probe = np.zeros((1, len(schema.feature_names)))
    try:
        out = predict_rows(model, probe)
    except Exception as exc:
        raise ReloadRefused(f"{model.tag}: probe prediction failed: {exc}") from None
    if out.shape != (1, 1 + len(fitted)) or not np.isfinite(out).all():
        raise ReloadRefused(f"{model.tag}: probe prediction is not a finite row of probabilities")


class ModelWatcher:
    """Polls the store and hands each new, checked production model to ``swap``."""

    def __init__(
        self,
        model_name: str,
        interval: float,
        current: LoadedModel,
        swap: Callable[[LoadedModel], None],
    ) -> None:
        self.model_name = model_name
        self.interval = interval
        self.current_tag = current.tag
        self.schema = current.schema  # the record every client of this server sends
        self.refused: set[str] = set()
        self._swap = swap

    async def run(self) -> None:
        """Forever, until cancelled; one failed check never ends the loop."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:
                logger.exception("model reload check failed; still serving %s", self.current_tag)

    async def check_once(self) -> bool:
        """True when a new model was swapped in."""
        try:
            tag = await anyio.to_thread.run_sync(newest_model_tag, self.model_name)
        except NoPromotedModel:
            return False  # the store was emptied: keep serving what is loaded
        if tag == self.current_tag or tag in self.refused:
            return False
        try:
            model = await anyio.to_thread.run_sync(load_checked, tag)
        except ReloadRefused as exc:
            self.refused.add(tag)
            logger.error("not reloading: %s; still serving %s", exc, self.current_tag)
            return False
        if not model.schema.same_inputs(self.schema) or model.schema.classes != self.schema.classes:
            self.refused.add(tag)
            logger.error("not reloading %s: it reads other columns or predicts other classes "
                         "than %s (another problem's model); still serving %s", tag,
                         self.current_tag, self.current_tag)
            return False
        previous, self.current_tag = self.current_tag, tag
        self._swap(model)
        logger.info("reloaded: now serving %s (was %s)", tag, previous)
        return True
