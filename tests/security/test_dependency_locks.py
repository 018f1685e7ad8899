"""The runtime lock is what production installs: no emulator, no test tools, every pin hashed."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"moto", "pytest", "pytest-django", "pytest-xdist", "hypothesis", "playwright", "ruff"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def pinned(lock: str) -> dict[str, str]:
    """Package name -> the block of lines that pins it."""
    blocks: dict[str, str] = {}
    current = None
    for line in (ROOT / lock).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = match.group(1).lower()
            blocks[current] = line
        elif current and line.startswith("    --hash="):
            blocks[current] += "\n" + line
    return blocks


def test_runtime_lock_has_no_development_packages() -> None:
    runtime = pinned("requirements.lock")
    assert {"django", "celery"} <= runtime.keys()
    assert not DEV_ONLY & runtime.keys()


def test_development_lock_adds_the_sandbox_and_test_tools() -> None:
    dev = pinned("requirements-dev.lock")
    assert {"moto", "pytest"} <= dev.keys()


def test_every_pin_is_hashed_and_runtime_pins_agree() -> None:
    runtime, dev = pinned("requirements.lock"), pinned("requirements-dev.lock")
    for name, block in {**runtime, **dev}.items():
        assert "--hash=sha256:" in block, name
    for name, block in runtime.items():
        assert dev[name].splitlines()[0] == block.splitlines()[0], name
