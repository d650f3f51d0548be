"""Telemetry off: one list (selftrain/offline.py) that the Makefile exports as it is."""

import shutil
import subprocess
from pathlib import Path

import pytest

from selftrain.offline import TELEMETRY_OFF

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_the_makefile_exports_every_telemetry_setting_of_the_one_list(tmp_path):
    probe = tmp_path / "probe.mk"
    probe.write_text("probe:\n\t@env\n")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(["make", "-s", "-f", "Makefile", "-f", str(probe), "probe"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True).stdout
    exported = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert {k: exported.get(k) for k in TELEMETRY_OFF} == TELEMETRY_OFF
