"""What a run's outcome depends on, hashed once at the start of the run.

Three readers share it: the ledger ("skip if unchanged" compares it with the last run's),
validation (the table's sha256 keys the round checkpoints through ``run_key``) and lineage
(the md5 DVC records for the same bytes, and the hash of the configuration stored with the
model). One streamed read of the table gives both digests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selftrain.config import PipelineConfig
from tasks.workspace import config_digest, file_digests


@dataclass(frozen=True)
class RunFingerprint:
    table_sha256: str | None  # None when the table is missing (validation then says so)
    table_md5: str | None  # DVC's hash of the same bytes
    params_sha256: str  # the whole configuration

    @property
    def signature(self) -> str:
        """Table + configuration: equal signatures mean a rerun would change nothing."""
        return f"{self.table_sha256}:{self.params_sha256}"


def fingerprint_run(config: PipelineConfig) -> RunFingerprint:
    path = Path(config.data.path)
    digests = file_digests(path, ("sha256", "md5")) if path.is_file() else {}
    return RunFingerprint(digests.get("sha256"), digests.get("md5"), config_digest(config))
