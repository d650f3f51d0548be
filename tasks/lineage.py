"""Lineage: hashes that tie a model to the exact table and parameters it came from."""

from __future__ import annotations

from pathlib import Path

import yaml

from selftrain.config import PipelineConfig
from tasks.fingerprint import RunFingerprint
from tasks.package import git_commit


def collect_lineage(config: PipelineConfig, fingerprint: RunFingerprint,
                    params_path: str | None) -> dict:
    """``dvc_hash`` is the md5 DVC records for the table (the same bytes, the same hash),
    ``params_hash`` the sha256 of the configuration actually used. ``dvc_tracked`` is true
    only when DVC has recorded exactly these bytes (in ``<table>.dvc`` or ``dvc.lock``)."""
    md5 = fingerprint.table_md5
    recorded, source = recorded_dvc_hash(config.data.path)
    return {
        "data_path": config.data.path,
        "data_fingerprint": fingerprint.table_sha256,
        "dvc_hash": md5,
        "params_path": params_path,
        "params_hash": fingerprint.params_sha256,
        "git_commit": git_commit(),
        "dvc_tracked": recorded == md5,
        "dvc_source": source if recorded == md5 else None,
    }


def recorded_dvc_hash(data_path: str, root: str | Path = ".") -> tuple[str | None, str | None]:
    """The md5 DVC recorded for ``data_path`` and the file that records it, read without
    running dvc (the flow must never take DVC's repo lock: ``dvc repro`` holds it)."""
    table = Path(data_path)
    dvc_file = table.with_name(f"{table.name}.dvc")
    for out in _outs(dvc_file):
        if out.get("path") == table.name:
            return out.get("md5"), str(dvc_file)
    target = _relative(table, Path(root))
    lock = Path(root) / "dvc.lock"
    stages = _load_yaml(lock).get("stages") or {}
    for stage in stages.values() if isinstance(stages, dict) else []:
        for out in stage.get("outs") or [] if isinstance(stage, dict) else []:
            if isinstance(out, dict) and out.get("path") == target:
                return out.get("md5"), str(lock)
    return None, None


def _outs(dvc_file: Path) -> list[dict]:
    outs = _load_yaml(dvc_file).get("outs") or []
    return [o for o in outs if isinstance(o, dict)] if isinstance(outs, list) else []


def _load_yaml(path: Path) -> dict:
    """A missing or unreadable file records nothing: lineage then says ``dvc_tracked: false``
    (dvc itself reports a corrupt file, with its own message, when it next reads it)."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _relative(table: Path, root: Path) -> str:
    try:
        return table.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return table.as_posix()
