"""The restore drill of docs/runbook.md ("Backup and restore"), with the tools it names.

A control-plane database with tenants, accounts, planes, clusters, operations and audit rows
is copied with ``pg_dump -Fc`` and restored with ``pg_restore`` into a fresh database. The
restored copy has every row of every table, the operation-representation triggers (a restore
without them would serve stale operations), no migration left to apply, and the API served
from it answers with the same data.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from django.db import connection

from controlplane.core.audit import Actor
from controlplane.core.roles import Role
from controlplane.tenancy import services as tenancy
from tests.e2e.live import REPO_ROOT, Gunicorn, database_url, server_env
from tests.factories import (
    AuditEventFactory,
    ClusterFactory,
    ComputePlaneFactory,
    MembershipFactory,
    OperationFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        counts = {}
        for table in tables:
            row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608
            assert row is not None
            counts[table] = int(row[0])
        return counts


def _triggers(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            row[0] for row in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        }


@pytest.mark.usefixtures("transactional_db")
def test_pg_dump_restored_into_a_fresh_database_is_the_same_control_plane(
    tmp_path: Path,
) -> None:
    if connection.vendor != "postgresql" or not shutil.which("pg_dump"):
        pytest.skip("needs PostgreSQL and its client tools (pg_dump, pg_restore)")
    org = OrganizationFactory(slug="restored")
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.OWNER)
    token = tenancy.create_token(
        actor=Actor(user=user),
        organization=org,
        created_by=user,
        name="restore drill",
        role=Role.OWNER,
        acting_role=Role.OWNER,
        expires_in_days=1,
    ).secret
    for _ in range(3):
        plane = ComputePlaneFactory(organization=org)
        ClusterFactory(organization=org, compute_plane=plane)
        OperationFactory(organization=org)
        AuditEventFactory(organization=org)

    source = database_url()
    fresh_name = f"lp_restore_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(source)
    fresh = urlunsplit(parts._replace(path=f"/{fresh_name}"))
    dump = tmp_path / "lakeplane.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), source], check=True)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh_name}"')
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", fresh, str(dump)], check=True
        )
        assert _counts(fresh) == _counts(source)
        assert _triggers(fresh) == _triggers(source)
        assert {"core_operation_representation_guard"} <= _triggers(fresh)

        env_db = {"DATABASE_URL": fresh}
        check = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--check"],
            cwd=REPO_ROOT,
            env={**server_env(tmp_path), **env_db},
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr

        server = Gunicorn.start(tmp_path, name="restored", workers=1, **env_db)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            planes = requests.get(
                f"{server.base}/api/v1/orgs/restored/compute-planes", headers=headers, timeout=60
            )
            assert planes.status_code == 200, planes.text
            assert len(planes.json()["results"]) == 3
        finally:
            server.stop()
    finally:
        with psycopg.connect(
            urlunsplit(parts._replace(path="/postgres")), autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh_name}" WITH (FORCE)')
