"""The command line loads Prefect only inside a command: `selftrain deploy` and
`selftrain server` must set the server's credentials before Prefect reads its settings."""

import subprocess
import sys


def test_importing_the_command_line_loads_no_prefect():
    script = ("import sys, flows.cli; "
              "print(sorted(m for m in sys.modules if m.startswith('prefect')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
