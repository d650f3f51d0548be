"""The README's commands work as written on a fresh shell: the activation step comes
before the first bare tool command, and after it every tool the README names runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
ACTIVATE = "source .venv/bin/activate"
# Tools the project installs into .venv/bin; the README types them bare after activation.
TOOLS = ("selftrain", "dvc", "prefect", "bentoml", "dask")
ANYWHERE = {"make", "curl", "pip", "python", "export", "git", "chmod"}  # the shell's own


def bash_lines() -> list[str]:
    """Every command line of the README's ```bash blocks, in order (comments dropped)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#") and not line.startswith("-"):
                lines.append(line)
    return lines


def first_word(line: str) -> str:
    words = [w for w in line.split() if "=" not in w.split("/")[0]]  # skip VAR=value
    return words[0] if words else ""


def test_activation_comes_before_the_first_bare_tool_command():
    lines = bash_lines()
    assert ACTIVATE in lines, "the README never shows how to put the tools on PATH"
    first_tool = next(i for i, line in enumerate(lines) if first_word(line) in TOOLS)
    assert lines.index(ACTIVATE) < first_tool, lines[first_tool]


def test_every_command_the_readme_types_is_a_tool_we_install_or_the_shells_own():
    unknown = {first_word(line) for line in bash_lines()} - set(TOOLS) - ANYWHERE - {"source"}
    assert not unknown, f"README commands nobody installs: {sorted(unknown)}"


def test_after_activation_every_tool_runs_from_a_bare_shell(tmp_path):
    venv = Path(sys.executable).parent.parent
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "DO_NOT_TRACK": "1", "PREFECT_HOME": str(tmp_path / "prefect")}
    checks = " && ".join(f"{tool} --help >/dev/null" for tool in TOOLS)
    script = f"source {venv}/bin/activate && {checks} && command -v selftrain"
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"{venv}/bin/selftrain"
    bare = subprocess.run(["bash", "-c", "command -v selftrain"], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    if not os.path.exists("/usr/bin/selftrain"):  # the reason the step is there
        assert bare.returncode != 0
