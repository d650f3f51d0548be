"""Lineage: hashes that tie a model to the exact table and parameters it came from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from selftrain.config import PipelineConfig
from tasks.package import git_commit
from tasks.workspace import file_digest


def collect_lineage(config: PipelineConfig, fingerprint: str, params_path: str | None) -> dict:
    """``dvc_hash`` is the md5 DVC records for the table (the same bytes, the same hash),
    ``params_hash`` the sha256 of the configuration actually used."""
    params = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return {
        "data_path": config.data.path,
        "data_fingerprint": fingerprint,
        "dvc_hash": file_digest(config.data.path, "md5"),
        "params_path": params_path,
        "params_hash": hashlib.sha256(params.encode()).hexdigest(),
        "git_commit": git_commit(),
        "dvc_tracked": Path(f"{config.data.path}.dvc").exists(),
    }
