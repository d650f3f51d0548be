"""The Bento's requirements are pinned to the versions CI tested (constraints.txt)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned (name==version)"
            out[name.lower().replace("_", "-")] = version
    return out


def test_the_bento_installs_exactly_the_tested_versions():
    tested = pins(ROOT / "constraints.txt")
    serving = pins(ROOT / "serving" / "requirements.txt")
    assert {name: tested.get(name) for name in serving} == serving
