"""The exposed surfaces: /admin/ is off in production unless enabled, and then for staff over SSO
only; the public API's schema is public, and only the public API is in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from controlplane.core.adminsite import OIDC_BACKEND
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "controlplane.settings.production",
    "SECRET_KEY": "p" * 60,
    "DATABASE_URL": "postgres://lakeplane@db.internal:5432/lakeplane",
    "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
    "LAKEPLANE_VENDOR_PRINCIPAL": "arn:aws:iam::210987654321:role/lakeplane-control-plane",
    "ALLOWED_HOSTS": "lakeplane.example.com",
}
OIDC = {
    "OIDC_RP_CLIENT_ID": "lakeplane",
    "OIDC_RP_CLIENT_SECRET": "s3cr3t-for-the-test",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.com/jwks",
}
# Requests that need no database: the answers come from routing, the admin's login redirect and
# the middleware. Each prints status, Location and the headers under test.
PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="lakeplane.example.com")
out = {}
for path in %(paths)r:
    r = client.get(path, secure=True)
    out[path] = {"status": r.status_code, "location": r.get("Location", ""),
                 "headers": {k: v for k, v in r.items()}}
print(json.dumps(out))
"""


def production(tmp_path: Path, paths: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEPLANE", "OIDC_"))}
    env.update(PRODUCTION, LAKEPLANE_DATA_DIR=str(tmp_path), **extra)
    return subprocess.run(
        [sys.executable, "-c", PROBE % {"paths": paths}],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answers(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_production_has_no_admin_unless_enabled(tmp_path: Path) -> None:
    out = answers(production(tmp_path, ["/admin/", "/admin/login/"]))
    assert out["/admin/"]["status"] == 404
    assert out["/admin/login/"]["status"] == 404


def test_enabling_the_admin_in_production_needs_single_sign_on(tmp_path: Path) -> None:
    result = production(tmp_path, ["/admin/"], LAKEPLANE_ADMIN_ENABLED="true")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last
    assert "LAKEPLANE_ADMIN_ENABLED" in last


def test_an_enabled_production_admin_sends_everyone_to_the_idp(tmp_path: Path) -> None:
    out = answers(
        production(tmp_path, ["/admin/", "/admin/login/"], LAKEPLANE_ADMIN_ENABLED="true", **OIDC)
    )
    assert out["/admin/"]["status"] == 302
    assert out["/admin/"]["location"].startswith("/admin/login/")
    # No password form: the admin's login is the IdP's.
    assert out["/admin/login/"]["status"] == 302
    assert out["/admin/login/"]["location"].startswith("/oidc/authenticate/")


@pytest.fixture
def sso_required(settings: Any) -> None:
    settings.LAKEPLANE_ADMIN_REQUIRE_SSO = True
    settings.OIDC_ENABLED = True


@pytest.mark.django_db
def test_a_staff_password_session_does_not_open_the_admin(sso_required: None) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")

    index = client.get("/admin/")
    assert index.status_code == 302
    login = client.get(index["Location"])
    assert login.status_code == 302
    assert login["Location"].startswith("/oidc/authenticate/?next=")
    # The password form is not there to post to either.
    posted = client.post("/admin/login/", {"username": staff.email, "password": "x"})
    assert posted.status_code == 302
    assert posted["Location"].startswith("/oidc/authenticate/")


@pytest.mark.django_db
def test_staff_signed_in_over_sso_get_the_admin_and_others_are_refused(
    sso_required: None,
) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff, backend=OIDC_BACKEND)
    assert client.get("/admin/").status_code == 200

    customer = UserFactory(is_staff=False)
    other = Client()
    other.force_login(customer, backend=OIDC_BACKEND)
    assert other.get("/admin/").status_code == 302
    assert other.get("/admin/login/").status_code == 403  # no loop back to the IdP


def test_the_public_schema_is_public_and_holds_the_public_api_only(client: Client) -> None:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200  # unauthenticated: documented in docs/security.md
    paths = json.loads(response.content)["paths"]
    assert paths
    assert all(path.startswith("/api/v1/") for path in paths), [
        p for p in paths if not p.startswith("/api/v1/")
    ]
