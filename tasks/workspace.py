"""Where a run keeps its files, and the keys that tie them to data + configuration."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.config import PipelineConfig

# The parts of the configuration that change what the rounds compute.
ROUND_SECTIONS = ("seed", "data", "split", "masking", "self_training")


def config_digest(config: PipelineConfig, sections: tuple[str, ...] | None = None) -> str:
    """sha256 of the configuration (or of ``sections`` of it), key order independent: the
    one way a configuration is hashed."""
    include = None if sections is None else set(sections)
    payload = json.dumps(config.model_dump(mode="json", include=include), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def run_key(fingerprint: str, config: PipelineConfig) -> str:
    """Data content fingerprint + the configuration the rounds depend on: a change of the
    gate or of serving settings reuses the round checkpoints."""
    rounds = config_digest(config, ROUND_SECTIONS)
    return hashlib.sha256(f"{fingerprint}:{rounds}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Workspace:
    """Files of one run under ``root``: prepared arrays and round checkpoints."""

    root: Path

    @classmethod
    def for_run(cls, base: str | Path, key: str) -> Workspace:
        root = (Path(base) / key).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def array_path(self, name: str) -> Path:
        return self.root / f"{name}.npy"

    def save_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Numbers as ``.npy``; object arrays (text labels, -1 for unlabeled) as JSON: nothing
        in the workspace is pickled, so nothing in it can run code when it is read back."""
        for name, arr in arrays.items():
            if arr.dtype.kind == "O":
                tmp = self.root / f"{name}.tmp.json"
                tmp.write_text(json.dumps(arr.tolist(), default=_plain))
                tmp.replace(self.text_array_path(name))
                continue
            tmp = self.root / f"{name}.tmp.npy"
            np.save(tmp, arr, allow_pickle=False)
            tmp.replace(self.array_path(name))
            self.text_array_path(name).unlink(missing_ok=True)

    def text_array_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def save_frames(self, frames: dict[str, pd.DataFrame]) -> None:
        """Raw feature frames as Parquet (no pickle), written atomically."""
        for name, frame in frames.items():
            tmp = self.root / f"{name}.tmp.parquet"
            frame.to_parquet(tmp, index=False)
            tmp.replace(self.frame_path(name))

    def frame_path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"

    def load_frame(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.frame_path(name))

    def load(self, name: str) -> np.ndarray:
        text = self.text_array_path(name)
        if text.exists():
            return np.array(json.loads(text.read_text()), dtype=object)
        # Memory-mapped: a round reads the table once per process, not once per task.
        return np.load(self.array_path(name), mmap_mode="r", allow_pickle=False)

    def state_path(self, round_: int) -> Path:
        return self.root / f"state-{round_:03d}.npz"



def _plain(value):
    """NumPy scalars inside an object array, as JSON numbers."""
    return value.item()


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("sha256",),
                 chunk_size: int = 1 << 20) -> dict[str, str]:
    """Content hashes of a file in one streamed read (tables can be large)."""
    digests = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            for digest in digests.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}

# Outputs, relative to the working directory (the project root under `make run` / DVC).
REPORTS_DIR = "reports"
METRICS_DIR = "metrics"
CANDIDATES_DIR = "models/candidates"
WORK_DIR = ".selftrain/work"


class RunLocked(RuntimeError):
    """Another run holds the lock; the message names it and how to queue instead."""


@contextlib.contextmanager
def exclusive(path: str | Path, what: str, wait: bool = False):
    """Hold an exclusive lock on ``path`` (created if needed) for the block.

    ``wait=False``: raise ``RunLocked`` at once when another process holds it, naming that
    process; ``wait=True``: queue behind it. The lock dies with its process (``flock``), so a
    killed run never leaves a stale lock behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunLocked(f"{what} is busy: {holder} holds {path}; wait for it to finish, or "
                            "pass --wait to queue behind it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"selftrain run pid {os.getpid()} (started "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')})")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


RUN_LOCK = ".selftrain/run.lock"
