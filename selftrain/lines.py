"""Model lines: which entry of a line is production, and every switch that made it so.

A line is one problem's models in the store (one BentoML model name). Production is not a
label on the entries but the top of the line's history: an append-only JSON-lines file
beside the store, one event per switch (``promote``: a tag becomes production;
``rollback``: the last promotion is undone). Entering an entry into the store and making it
production are two steps, each atomic (a directory rename, then one appended line), so a
kill between them leaves the previous champion in production and the new entry idle.

Readers need nothing but this file and the entries it names: a partial or foreign entry
elsewhere in the store never hides the production model.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

STORE_ENV = "BENTOML_HOME"


class LineEvent(BaseModel):
    """One switch of a line's production model, as logged."""

    at: str
    action: Literal["promote", "rollback"]
    tag: str  # the production model after this event
    previous: str | None = None  # the production model before it
    by: str = ""  # what switched: "selftrain run", "selftrain promote", ...
    note: str = ""


class NothingToRollBack(RuntimeError):
    """The line has no earlier production model to return to."""


def store_home() -> Path:
    """The BentoML store's directory: ``$BENTOML_HOME``, else ``~/bentoml``."""
    return Path(os.environ.get(STORE_ENV) or Path.home() / "bentoml")


def history_path(line: str) -> Path:
    return store_home() / "selftrain-lines" / f"{line}.jsonl"


def read_history(line: str) -> list[LineEvent]:
    """The line's events, oldest first; a torn or unreadable line is skipped."""
    path = history_path(line)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    events = []
    for raw in text.splitlines():
        try:
            events.append(LineEvent.model_validate_json(raw))
        except ValidationError:
            continue
    return events


def production_stack(line: str) -> list[str]:
    """The production models of ``line``, most recent first: the top is production, the
    rest are what a rollback returns to (and what serves when the top fails its check)."""
    stack: list[str] = []
    for event in read_history(line):
        if event.action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != event.tag:
            stack.append(event.tag)
    return stack[::-1]


def production_tag(line: str) -> str | None:
    stack = production_stack(line)
    return stack[0] if stack else None


def ever_production(line: str) -> set[str]:
    return {event.tag for event in read_history(line)}


def record_promotion(line: str, tag: str, by: str, note: str = "") -> LineEvent:
    """Make ``tag`` the production model of ``line``. The caller holds the line's lock."""
    return _append(line, LineEvent(at=_now(), action="promote", tag=tag,
                                   previous=production_tag(line), by=by, note=note))


def record_rollback(line: str, by: str, note: str = "") -> LineEvent:
    """Undo the last promotion of ``line``: the production model before it serves again."""
    stack = production_stack(line)
    if len(stack) < 2:
        current = (f"{stack[0]} is the only production model left" if stack
                   else "nothing is production")
        raise NothingToRollBack(f"model line {line!r} has no earlier production model to roll "
                                f"back to ({current})")
    return _append(line, LineEvent(at=_now(), action="rollback", tag=stack[1],
                                   previous=stack[0], by=by, note=note))


def _append(line: str, event: LineEvent) -> LineEvent:
    # One short write with O_APPEND, then fsync: the event is in the file or it is not. A
    # line torn by a kill is closed first, so it spoils only itself.
    path = history_path(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, ("\n" if torn else "").encode() + (event.model_dump_json() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
