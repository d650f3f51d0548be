"""The model store, read: its entries one by one, and the one model a line serves.

Every reader takes its model from ``servable_entry``: the server at start and at each
reload check, batch scoring, the gate's champion. That is the requested tag, or else the
top of the line's production history (``selftrain.lines``) that reads and verifies
against its signed record (``selftrain.integrity``); an entry that does not is skipped
with its reason, so a tampered or half-written newest model leaves the one before it in
service. An unreadable entry (an empty folder, a torn ``model.yaml``) is reported and
skipped, never taken for an empty store. Writing lives in ``tasks.model_store``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selftrain.integrity import IntegrityError, verify_artifacts
from selftrain.lines import production_stack, store_home
from selftrain.record import PackagedModel


class NoServableModel(LookupError):
    """No entry the caller could use; the message says what to do."""


@dataclass(frozen=True)
class StoredEntry:
    """One entry of a line as read from the store: its record, or why it cannot be read."""

    tag: str
    path: Path
    created: str
    record: PackagedModel | None
    problem: str | None = None

    def verify(self) -> str | None:
        """Why this entry must not be used (unreadable, or failing its signed hashes);
        None when it verifies."""
        if self.record is None:
            return self.problem
        try:
            verify_artifacts(self.path, self.record.integrity, f"model {self.tag}")
        except IntegrityError as exc:
            return str(exc)
        return None


def line_names() -> list[str]:
    """Every line in the store, and every line with a history."""
    names = {p.name for p in (store_home() / "models").glob("*") if p.is_dir()}
    names |= {p.stem for p in (store_home() / "selftrain-lines").glob("*.jsonl")}
    return sorted(names)


def line_entries(line: str) -> list[StoredEntry]:
    """The entries of ``line``, oldest first; unreadable ones carry their problem."""
    out = [read_entry(f"{line}:{folder.name}")
           for folder in sorted((store_home() / "models" / line).glob("*")) if folder.is_dir()]
    return sorted(out, key=lambda e: e.created)


def read_entry(tag: str) -> StoredEntry:
    """The entry ``tag``; an unreadable or absent one is returned with its problem."""
    import bentoml

    line, _, version = tag.partition(":")
    path = store_home() / "models" / line / version
    if not path.is_dir():
        return StoredEntry(tag, path, "", None,
                           f"model {tag!r} is not in the BentoML model store at {store_home()}")
    try:
        stored = bentoml.models.get(tag)
        record = PackagedModel.from_metadata(line, dict(stored.info.metadata),
                                             dict(stored.info.labels))
    except Exception as exc:  # a partial or foreign entry must not hide the others
        return StoredEntry(tag, path, "", None, f"unreadable model store entry {tag}: "
                           f"{type(exc).__name__}: {str(exc)[:160]}")
    return StoredEntry(str(stored.tag), Path(stored.path), stored.creation_time.isoformat(),
                       record)


def servable_entry(line: str, requested: str | None = None,
                   skipped: Callable[[str], None] = lambda reason: None,
                   loaded: str | None = None) -> StoredEntry:
    """The verified entry to use: ``requested`` (``line:version`` or a version of ``line``)
    if given, else the production model of ``line``; ``skipped(reason)`` hears of each
    production entry passed over. ``loaded``: the tag of a model the caller verified when
    it loaded it (a server's reload check every few seconds): not hashed again.
    NoServableModel says why none can be used."""
    if requested:
        entry = read_entry(requested if ":" in requested else f"{line}:{requested}")
        problem = entry.verify()
        if problem:
            raise NoServableModel(problem)
        return entry
    tags = production_stack(line)
    if not tags:
        raise NoServableModel(f"model line {line!r} has no production model in the BentoML "
                              f"model store at {store_home()}")
    for tag in tags:
        entry = read_entry(tag)
        problem = entry.problem if tag == loaded else entry.verify()
        if problem is None:
            return entry
        skipped(problem)
    raise NoServableModel(f"no production model of line {line!r} in the BentoML model store at "
                          f"{store_home()} reads and passes its integrity check (see the log)")
