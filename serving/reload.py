"""Hot reload: a running server follows the production model of its own line.

Every ``$SELFTRAIN_RELOAD_SECONDS`` (default 10; 0 turns it off) a task on the server's
event loop asks the store, in a worker thread, for the production model of the line it
serves (the top of the line's history that verifies, ``selftrain.lines``: a promotion,
``selftrain promote`` or ``selftrain rollback`` moves it). A new tag is
loaded and checked (same columns and classes as the served model, one probe
prediction) in that thread too; only then is it swapped in, with one assignment on the
event loop, and the swap is logged (old tag -> new tag). Requests in flight finish on
the model they started with; every answer names its model.

A model refused once is tried again later, with backoff (interval, doubled per refusal,
at most ``MAX_BACKOFF_SECONDS``): it may be fixed or replaced meanwhile. A model of
another schema is never served. No reload when a tag is pinned or in a built Bento.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping

import anyio
import bentoml
import numpy as np

from selftrain.store import NoServableModel
from serving.model import TAG_ENV, LoadedModel, open_model, resolve_model_tag

RELOAD_ENV = "SELFTRAIN_RELOAD_SECONDS"
DEFAULT_RELOAD_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 600.0

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
    try:
        seconds = float(raw or DEFAULT_RELOAD_SECONDS)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"${RELOAD_ENV} must be a number of seconds >= 0 (0: off), got {raw!r}")
    return seconds or None


def load_checked(tag: str, served: LoadedModel) -> LoadedModel:
    """The store entry ``tag``, loaded and checked against ``served``; ReloadRefused if
    it cannot take its place."""
    try:
        model = open_model(bentoml.models.get(tag))
    except Exception as exc:  # a broken entry must never stop the server
        raise ReloadRefused(f"cannot load {tag}: {type(exc).__name__}: {exc}") from None
    schema = model.schema
    if not schema.same_problem(served.schema):
        raise ReloadRefused(f"{tag} reads other columns or predicts other classes than "
                            f"{served.tag} (another problem's model)")
    fitted = [c.item() if isinstance(c, np.generic) else c for c in model.predictor.classes_]
    if fitted != list(schema.classes):
        raise ReloadRefused(f"{tag}: classes {fitted} differ from the schema's")
    try:
        _, proba = model.predict(np.zeros((1, len(schema.feature_names))))
    except Exception as exc:
        raise ReloadRefused(f"{tag}: probe prediction failed: {exc}") from None
    if proba.shape != (1, len(fitted)) or not np.isfinite(proba).all():
        raise ReloadRefused(f"{tag}: probe prediction is not a finite row of probabilities")
    return model


class ModelWatcher:
    """Polls the store for ``line`` and hands each new, checked production model to ``swap``."""

    def __init__(self, line: str, interval: float, current: LoadedModel,
                 swap: Callable[[LoadedModel], None]) -> None:
        self.line, self.interval, self.current, self._swap = line, interval, current, swap
        self.refused: dict[str, tuple[float, float]] = {}  # tag -> (retry at, backoff)

    async def run(self) -> None:
        """Forever, until cancelled; one failed check never ends the loop."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:
                logger.exception("model reload check failed; still serving %s", self.current.tag)

    async def check_once(self) -> bool:
        """True when a new model was swapped in."""
        try:
            tag = await anyio.to_thread.run_sync(resolve_model_tag, self.line, None,
                                                 self.current.tag)
        except NoServableModel:
            return False  # the store was emptied: keep serving what is loaded
        retry_at, backoff = self.refused.get(tag, (0.0, self.interval / 2))
        if tag == self.current.tag or time.monotonic() < retry_at:
            return False
        try:
            model = await anyio.to_thread.run_sync(load_checked, tag, self.current)
        except ReloadRefused as exc:
            backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)
            self.refused[tag] = (time.monotonic() + backoff, backoff)
            logger.error("not reloading: %s; still serving %s (next try in %.0f s)", exc,
                         self.current.tag, backoff)
            return False
        self.refused.pop(tag, None)
        previous, self.current = self.current.tag, model
        self._swap(model)
        logger.info("model swap: %s -> %s", previous, tag)
        return True
