"""The environment that keeps every tool of the stack offline: one place for it."""

from __future__ import annotations

import os

# Telemetry off for Prefect, Great Expectations, BentoML (and anything honouring DO_NOT_TRACK).
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "BENTOML_DO_NOT_TRACK": "True",
}


def set_offline_defaults(**extra: str) -> None:
    """Telemetry off (plus ``extra``) unless the caller's environment already decided."""
    for key, value in {**TELEMETRY_OFF, **extra}.items():
        os.environ.setdefault(key, value)
