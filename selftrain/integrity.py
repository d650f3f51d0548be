"""Integrity of a packaged model: nothing is unpickled that this installation did not sign.

Loading a model constructs objects (and an old pickle runs code). So packaging records the SHA-256
of every artifact file and signs that record with an HMAC key that never leaves the
machine's user account; every load (serving, hot reload, the gate's champion) verifies the
signature and the hashes first. An edited model file fails its hash; a directory
dropped into the store, with a record of its own, fails the signature.

The key is ``$SELFTRAIN_SIGNING_KEY_FILE``, else ``~/.config/selftrain/signing.key``,
created (32 random bytes, mode 0600) on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEY_ENV = "SELFTRAIN_SIGNING_KEY_FILE"
RECORD_KEY = "integrity"  # where the record lives in the model's metadata


class IntegrityError(RuntimeError):
    """A model's files or record do not verify; the message says which and why."""


def sign_artifacts(directory: str | Path, names: list[str]) -> dict:
    """The signed record of ``names`` in ``directory``: their SHA-256 and an HMAC."""
    hashes = {name: file_sha256(Path(directory) / name) for name in sorted(names)}
    return {"sha256": hashes, "hmac": _mac(hashes)}


def verify_artifacts(directory: str | Path, record: dict | None, what: str) -> None:
    """Raise ``IntegrityError`` unless ``record`` is signed by this installation's key and
    every file it lists has its recorded hash. ``what`` names the model in the message."""
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), dict):
        raise IntegrityError(f"{what}: no integrity record (packaged without selftrain's "
                             "signature): refused")
    hashes = record["sha256"]
    if not hmac.compare_digest(str(record.get("hmac", "")), _mac(hashes)):
        raise IntegrityError(f"{what}: integrity record not signed by this installation's key "
                             f"({key_path()}): refused")
    for name, expected in hashes.items():
        path = Path(directory) / name
        if not path.is_file():
            raise IntegrityError(f"{what}: {name} is missing: refused")
        if not hmac.compare_digest(file_sha256(path), str(expected)):
            raise IntegrityError(f"{what}: {name} does not match its recorded SHA-256 "
                                 "(modified after packaging): refused")


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def key_path() -> Path:
    configured = os.environ.get(KEY_ENV)
    return Path(configured) if configured else Path.home() / ".config/selftrain/signing.key"


def _mac(hashes: dict) -> str:
    message = json.dumps(hashes, sort_keys=True).encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def _key() -> bytes:
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):  # first writer wins, the rest read it
            os.link(tmp, path)
        tmp.unlink()
    return path.read_bytes()
