"""Switching a line's production model by hand: ``selftrain promote TAG`` and
``selftrain rollback``, and the listing ``selftrain models`` prints.

Each switch happens under the line's lock (the one a run holds around gate + package),
only to an entry that reads and verifies, and only within one feature contract; it is
appended to the line's history, which the running servers of that line follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from selftrain.lines import (
    LineEvent,
    NothingToRollBack,
    ever_production,
    production_stack,
    record_promotion,
    record_rollback,
)
from selftrain.store import StoredEntry, line_entries, line_names, read_entry
from tasks.promote import line_lock
from tasks.workspace import exclusive


class SwitchRefused(RuntimeError):
    """A switch that would serve an unreadable, unverified or foreign model; says why."""


def promote_tag(tag: str) -> LineEvent:
    """Make the stored entry ``tag`` (``line:version``) the production model of its line."""
    line, _, version = tag.partition(":")
    if not line or not version:
        raise SwitchRefused(f"{tag!r} is not a model tag: expected <line>:<version> "
                            "(see `selftrain models`)")
    with exclusive(line_lock(line), f"model line {line!r}", wait=True):
        stack = production_stack(line)
        _check_servable(read_entry(tag), stack[0] if stack else None)
        return record_promotion(line, tag, by="selftrain promote")


def roll_back(line: str) -> LineEvent:
    """Undo the last promotion of ``line``: the production model before it serves again."""
    with exclusive(line_lock(line), f"model line {line!r}", wait=True):
        stack = production_stack(line)
        if len(stack) >= 2:
            _check_servable(read_entry(stack[1]), None)
        try:
            return record_rollback(line, by="selftrain rollback")
        except NothingToRollBack as exc:
            raise SwitchRefused(str(exc)) from None


@dataclass(frozen=True)
class ListedEntry:
    entry: StoredEntry
    status: str  # production, earlier production, idle, or what is wrong with it


def list_lines(only: str | None = None) -> dict[str, list[ListedEntry]]:
    """Every line (or ``only``) with its entries, oldest first, and each entry's status."""
    out = {}
    for line in [only] if only else line_names():
        stack = production_stack(line)
        earlier = ever_production(line)
        rows = []
        for entry in line_entries(line):
            status = entry.verify() or (
                "production" if stack and entry.tag == stack[0] else
                "earlier production" if entry.tag in earlier else "")
            rows.append(ListedEntry(entry, status))
        out[line] = rows
    return out


def _check_servable(entry: StoredEntry, current: str | None) -> None:
    problem = entry.verify()
    if problem:
        raise SwitchRefused(problem)
    if current and current != entry.tag:
        now = read_entry(current)
        if now.record is not None:
            a, b = now.record.features, entry.record.features
            if not a.same_problem(b):
                raise SwitchRefused(f"{entry.tag} reads other columns or predicts other classes "
                                    f"than the production model {current}: servers of this "
                                    "line would refuse it")

