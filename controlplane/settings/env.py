"""The one place settings read the environment.

Every setting that comes from outside goes through ``env``; a value that production requires
and that is missing fails at start with ``ImproperlyConfigured`` naming the variable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()


def data_dir() -> Path:
    """Where the embedded defaults keep their state (SQLite file, broker folders, secret key)."""
    path = Path(env.str("LAKEPLANE_DATA_DIR", default=str(BASE_DIR / ".data")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sandbox_secret_key() -> str:
    """A key generated once per data dir, so sessions survive restarts of the sandbox."""
    key_file = data_dir() / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# The AWS account id the local emulator (moto) uses for everything it creates: a fine default
# for the sandbox, never a trust target in production.
EMULATOR_ACCOUNT_ID = "123456789012"


def required(name: str, why: str = "") -> str:
    """The variable's value; missing or empty stops the process with a message naming it."""
    from django.core.exceptions import ImproperlyConfigured

    value: str = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(
            f"Set the environment variable {name}: production refuses to start without it"
            + (f" ({why})." if why else ".")
        )
    return value


def refuse(name: str, problem: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"The environment variable {name} {problem}.")


LOG_FORMATS = ("plain", "json")


def log_format(default: str) -> str:
    """LOG_FORMAT: plain or json; anything else stops the process naming the choices."""
    value: str = env.str("LOG_FORMAT", default="").strip() or default
    if value not in LOG_FORMATS:
        refuse("LOG_FORMAT", f"must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value
