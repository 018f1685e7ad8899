"""Production settings refuse to start misconfigured, naming the variable that is wrong.

Each case imports ``controlplane.settings.production`` in a fresh interpreter with a crafted
environment (settings are module-level code: this is the only honest way to run them).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "SECRET_KEY": "x" * 60,
    "DATABASE_URL": "postgres://lakeplane@db.internal:5432/lakeplane",
    "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
    "LAKEPLANE_VENDOR_PRINCIPAL": "arn:aws:iam::210987654321:role/lakeplane-control-plane",
    "ALLOWED_HOSTS": "lakeplane.example.com",
}
CRUCIAL = ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "LAKEPLANE_VENDOR_PRINCIPAL")


def load_production(tmp_path: Path, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith("LAKEPLANE")}
    env.update(GOOD, DJANGO_SETTINGS_MODULE="controlplane.settings.production")
    env["LAKEPLANE_DATA_DIR"] = str(tmp_path)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    code = "from django.conf import settings; print(settings.LAKEPLANE_VENDOR_PRINCIPAL)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_complete_environment_starts(tmp_path: Path) -> None:
    result = load_production(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == GOOD["LAKEPLANE_VENDOR_PRINCIPAL"]


@pytest.mark.parametrize("name", CRUCIAL)
@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_variable_is_named(tmp_path: Path, name: str, value: str | None) -> None:
    result = load_production(tmp_path, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1]


def test_sqlite_is_refused(tmp_path: Path) -> None:
    result = load_production(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr.splitlines()[-1]
    assert "PostgreSQL" in result.stderr.splitlines()[-1]


def test_the_filesystem_broker_is_refused(tmp_path: Path) -> None:
    result = load_production(tmp_path, CELERY_BROKER_URL="filesystem://")
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr.splitlines()[-1]


def test_the_emulator_account_is_never_the_vendor(tmp_path: Path) -> None:
    result = load_production(tmp_path, LAKEPLANE_VENDOR_PRINCIPAL="arn:aws:iam::123456789012:root")
    assert result.returncode != 0
    assert "LAKEPLANE_VENDOR_PRINCIPAL" in result.stderr.splitlines()[-1]


def test_the_shared_base_has_no_emulator_vendor_default() -> None:
    text = (ROOT / "controlplane/settings/base.py").read_text()
    assert "123456789012" not in text
