"""The BentoML model store, written atomically and read entry by entry.

Writing: BentoML's own ``register`` creates the final directory and then copies files
into it, so a kill leaves a half-written entry in the store. Here the entry is built by
BentoML in a staging store beside the real one (same file system), flushed to disk,
verified against its signed hashes, and only then moved into ``models/<line>/<version>``
with one ``rename``. Making it production is a separate, later step (``selftrain.lines``).
A kill at any point leaves either nothing in the store or a complete entry that is not
(yet) production; staging left by a killed process is removed by the next promotion.

Reading is ``selftrain.store``'s (shared with serving and batch scoring).

``$SELFTRAIN_PAUSE_AT=<point>`` makes packaging stop at that point (``written``,
``staged``, ``moved``) and wait to be killed: how the tests kill it at each of them
(``$SELFTRAIN_PAUSE_SECONDS`` ends the wait after that long instead).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import bentoml
from bentoml._internal.models.model import ModelStore  # a staging store beside the real one

from selftrain.compiled import compiled_summary
from selftrain.integrity import RECORD_KEY, verify_artifacts
from selftrain.lines import store_home
from selftrain.record import INFERENCE_KEY, PackagedModel
from selftrain.store import NoServableModel, servable_entry

STAGING_DIR = ".selftrain-staging"
PAUSE_ENV = "SELFTRAIN_PAUSE_AT"
PAUSE_SECONDS_ENV = "SELFTRAIN_PAUSE_SECONDS"
PAUSE_POINTS = ("written", "staged", "moved")

logger = logging.getLogger("selftrain.store")


@contextlib.contextmanager
def new_entry(record: PackagedModel) -> Iterator:
    """Yield a BentoML model entry of ``record.line`` to write files into (``entry.path``,
    ``entry.info.metadata``); when the block ends cleanly the complete entry enters the
    store with one rename. On any failure the store is as it was."""
    clear_stale_staging()
    staging = store_home() / STAGING_DIR / f"{record.line}.{os.getpid()}.{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    entry = None
    try:
        with bentoml.models.create(record.line, labels=record.labels(),
                                   metadata=record.metadata(),
                                   _model_store=ModelStore(staging)) as entry:
            yield entry
            pause_at("written")
        version = entry.tag.version
        staged = staging / record.line / version
        _fsync_tree(staged)
        verify_artifacts(staged, entry.info.metadata.get(RECORD_KEY), f"staged {entry.tag}")
        pause_at("staged")
        final = store_home() / "models" / record.line / version
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, final)
        _fsync_dir(final.parent)
        _write_latest(final.parent, version)
        pause_at("moved")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if entry is not None:  # BentoML's temporary copy, kept alive by the exception
            shutil.rmtree(entry.path, ignore_errors=True)


def open_production(line: str, log=logger):
    """(tag, estimator, FeatureSchema, record) of the production model of ``line`` (see
    ``selftrain.store``; one log line for each entry passed over), None when it has none."""
    try:
        entry = servable_entry(line, skipped=lambda reason: log.warning(
            "production model skipped: %s; trying the one before it", reason))
    except NoServableModel:
        return None
    model, schema = entry.record.load(entry.path, f"production model {entry.tag}")
    return entry.tag, model, schema, entry.record


def pause_at(point: str) -> None:
    """Stop here when ``$SELFTRAIN_PAUSE_AT`` names this point, for good (tests kill -9 the
    process then) or ``$SELFTRAIN_PAUSE_SECONDS``; announce it on stderr so the test knows."""
    if os.environ.get(PAUSE_ENV) == point:
        os.write(2, f"selftrain: paused at {point} (pid {os.getpid()})\n".encode())
        until = time.monotonic() + float(os.environ.get(PAUSE_SECONDS_ENV) or "inf")
        while time.monotonic() < until:
            time.sleep(min(1.0, max(until - time.monotonic(), 0.0)))


def clear_stale_staging() -> None:
    """Remove staging folders of processes that no longer run (killed mid-packaging)."""
    for folder in (store_home() / STAGING_DIR).glob("*.*.*"):
        try:
            pid = int(folder.name.split(".")[-2])
        except ValueError:
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_latest(line_dir: Path, version: str) -> None:
    # BentoML's ``name:latest`` pointer; informational only (production is the history).
    tmp = line_dir / f".latest.{os.getpid()}.tmp"
    tmp.write_text(version)
    os.replace(tmp, line_dir / "latest")


def store_model(model, record: PackagedModel, held_out: list | None = None,
                log: logging.Logger | logging.LoggerAdapter = logger) -> str:
    """Write ``model`` with its ``record`` (signed) as a new entry of ``record.line``; its tag.
    With ``held_out`` rows the model is also compiled and checked on them
    (``selftrain.compiled``); which form serves, and why, is the ``inference`` key.
    The entry is not production until the caller records the switch."""
    with new_entry(record) as entry:
        entry.info.metadata.update(record.save(entry.path, model, held_out).metadata())
        if held_out is not None:
            summary = compiled_summary(entry.path)
            entry.info.metadata[INFERENCE_KEY] = summary
            log.info("inference: %s (%s)", summary["kind"], summary["why"])
    return str(entry.tag)
