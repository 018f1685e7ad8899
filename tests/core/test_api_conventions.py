"""API conventions: ids, pagination, problem+json, OpenAPI, health, production checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.core.ids import new_id
from controlplane.core.roles import Role
from tests.factories import OperationFactory

ROOT = Path(__file__).resolve().parents[2]


def test_ids_are_prefixed_sortable_and_unique():
    ids = [new_id("op") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"op_[0-9a-z]{26}", i) for i in ids)
    assert sorted(ids) == ids or ids[0] <= ids[-1]


@pytest.mark.django_db
def test_cursor_pagination(owner, org):
    for _ in range(7):
        OperationFactory(organization=org)
    seen = []
    url = f"/api/v1/orgs/{org.slug}/operations?limit=3"
    pages = 0
    while url:
        body = owner.client.get(url).json()
        assert len(body["results"]) <= 3
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)  # newest first


@pytest.mark.django_db
def test_limit_is_capped_at_200(owner, org):
    body = owner.client.get(f"/api/v1/orgs/{org.slug}/operations?limit=100000").json()
    assert "results" in body


@pytest.mark.django_db
def test_operation_shape(owner, org):
    op = OperationFactory(organization=org)
    body = owner.client.get(f"/api/v1/orgs/{org.slug}/operations/{op.pk}").json()
    assert set(body) >= {
        "id",
        "kind",
        "target",
        "status",
        "progress",
        "steps",
        "error",
        "created_at",
        "finished_at",
    }
    assert body["target"] == {"type": "organization", "id": org.pk}
    assert body["error"] is None
    assert [s["name"] for s in body["steps"]] == ["first", "second"]
    assert set(body["steps"][0]) >= {"name", "status", "started_at", "finished_at", "detail"}


@pytest.mark.django_db
def test_unknown_api_path_is_problem_json(owner):
    response = owner.client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/orgs/{org}/operations" in text
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["broker"]["ok"] is True


def test_readyz_reports_an_unreachable_broker(tmp_path):
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "LAKEPLANE_DATA_DIR": str(tmp_path),
    }
    code = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='localhost').get('/readyz');"
        "print(r.status_code, json.dumps(r.json()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.startswith("503")
    assert '"broker": {"ok": false' in out


def test_production_settings_pass_deploy_checks(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.production",
        "SECRET_KEY": "x" * 10 + "-production-grade-secret-key-for-the-check-" + "y" * 20,
        "ALLOWED_HOSTS": "lakeplane.example.com",
        "LAKEPLANE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://lakeplane@db.internal:5432/lakeplane",
        "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
        "LAKEPLANE_VENDOR_PRINCIPAL": "arn:aws:iam::210987654321:role/lakeplane-control-plane",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(
        DJANGO_SETTINGS_MODULE="controlplane.settings.production",
        LAKEPLANE_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_precompiled_page_query_pages_exactly_like_the_orm(owner, org, monkeypatch):
    """The list's precompiled page SQL (PostgreSQL) gives the ORM path's bytes on every page,
    forwards and back, and never another org's rows."""
    from controlplane.tenancy.api.operations import OperationViewSet
    from tests.factories import OrganizationFactory

    for _ in range(8):
        OperationFactory(organization=org)
    for _ in range(3):
        OperationFactory(organization=OrganizationFactory())

    def walk() -> list[bytes]:
        answers, url = [], f"/api/v1/orgs/{org.slug}/operations?limit=3"
        while url:
            response = owner.client.get(url)
            assert response.status_code == 200
            answers.append(response.content)
            url = response.json()["next"]
        url = response.json()["previous"]  # and back again from the last page
        while url:
            response = owner.client.get(url)
            answers.append(response.content)
            url = response.json()["previous"]
        return answers

    fast = walk()
    monkeypatch.setattr(OperationViewSet, "_plain_org_scope", classmethod(lambda cls: False))
    assert walk() == fast
    assert len(fast) == 5  # 3 pages forward, 2 back


@pytest.mark.parametrize("limit", ["abc", "0", "-3", "2.5", ""])
@pytest.mark.django_db
def test_an_invalid_limit_is_a_400_naming_the_field(org, make_caller, limit):
    caller = make_caller(org, Role.OWNER, via="token")
    for path in ("operations", "clusters", "cloud-accounts"):
        response = caller.client.get(f"/api/v1/orgs/{org.slug}/{path}?limit={limit}")
        assert response.status_code == 400, (path, limit)
        assert response["Content-Type"] == "application/problem+json"
        assert list(response.json()["errors"]) == ["limit"]
