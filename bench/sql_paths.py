"""Hand-written SQL against the ORM path it replaces, on PostgreSQL, in one run (issue 18).

Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lakeplane_bench_sql \\
      .venv/bin/python bench/sql_paths.py            # defaults: 400 requests per variant

Each hot path that has a PostgreSQL-only optimisation is timed both ways in this process
(Django test client, CPU time of this process and wall time, alternating batches so both variants
see the same machine), and the ratio ORM / optimised is printed. The issue's rule: keep an
optimisation only where it is worth at least 1.5x on the figure it serves.

1. ``list-session``: ``GET /orgs/{org}/operations?limit=50`` signed in (the DRF view):
   the precompiled page SQL (``_PageRows``) against the ORM queryset.
2. ``list-token``: the same list with a Bearer token: the lean entry point (token and page in
   one prepared statement) against the DRF view.
3. ``list-token-unprepared``: the lean entry point with ``LAKEPLANE_DB_PREPARED_STATEMENTS`` off
   against on (what ``core/db.py``'s ``fetch_prepared`` adds).
4. ``observed``: one batch of status reports (``--planes`` planes x ``--clusters`` clusters)
   stored by the clusters app's one UPDATE statement against its ORM path (``_apply_report``).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api_throughput import bench_env, ensure_database, manage

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_bench_sql"
KEEP_RATIO = 1.5


def timed(call: Callable[[], Any], n: int) -> tuple[float, float]:
    """CPU and wall milliseconds per call over ``n`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def ab(name: str, optimised: Callable[[], Any], orm: Callable[[], Any], n: int) -> dict[str, Any]:
    """Alternate batches of the two variants; the median of the batches, per call."""
    for call in (optimised, orm):  # warm-up: compile caches, connections, prepared plans
        timed(call, max(5, n // 20))
    batches = 8
    per = max(1, n // batches)
    fast: list[tuple[float, float]] = []
    slow: list[tuple[float, float]] = []
    for _ in range(batches):
        fast.append(timed(optimised, per))
        slow.append(timed(orm, per))
    row = {
        "path": name,
        "optimised_cpu_ms": statistics.median(c for c, _ in fast),
        "orm_cpu_ms": statistics.median(c for c, _ in slow),
        "optimised_wall_ms": statistics.median(w for _, w in fast),
        "orm_wall_ms": statistics.median(w for _, w in slow),
    }
    row["ratio_wall"] = row["orm_wall_ms"] / max(row["optimised_wall_ms"], 1e-6)
    row["ratio_cpu"] = row["orm_cpu_ms"] / max(row["optimised_cpu_ms"], 1e-6)
    return row


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from computeplane_agent import contract
    from controlplane.clusters import observed
    from controlplane.core.audit import Actor
    from controlplane.core.models import Operation
    from controlplane.core.roles import Role
    from controlplane.tenancy import services
    from controlplane.tenancy.api import operations
    from controlplane.tenancy.models import Organization, User
    from tests.factories import CloudAccountFactory, ClusterFactory, ComputePlaneFactory

    settings.ALLOWED_HOSTS = ["*"]
    actor = Actor.system_actor("bench")
    org = Organization.objects.filter(slug="sqlbench").first()
    if org is None:
        owner = User.objects.create_user(email="sqlbench@example.com")
        org = services.create_organization(
            actor=actor, owner=owner, name="SQL bench", slug="sqlbench"
        )
    owner = User.objects.get(email="sqlbench@example.com")
    issued = services.create_token(
        actor=actor,
        organization=org,
        created_by=owner,
        name=f"bench {datetime.now(UTC):%H%M%S%f}",
        role=Role.VIEWER,
        acting_role=Role.OWNER,
        expires_in_days=1,
    )
    missing = 120 - Operation.objects.filter(organization=org).count()
    for _ in range(max(0, missing)):
        Operation.objects.create(
            organization=org, kind="bench.noop", target_type="organization", target_id=org.pk
        )
    url = f"/api/v1/orgs/{org.slug}/operations?limit=50"
    session = Client()
    session.force_login(owner)
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    def get(client: Client) -> Callable[[], Any]:
        def call() -> None:
            answer = client.get(url)
            assert answer.status_code == 200, answer.content

        return call

    plain_scope = operations.OperationViewSet._plain_org_scope
    lean_list = operations._lean_list
    rows: list[dict[str, Any]] = []

    def without_page_rows() -> None:
        operations.OperationViewSet._plain_org_scope = classmethod(lambda cls: False)  # type: ignore[method-assign,assignment]
        try:
            get(session)()
        finally:
            operations.OperationViewSet._plain_org_scope = plain_scope  # type: ignore[method-assign]

    rows.append(ab("list-session", get(session), without_page_rows, args.requests))

    def without_lean() -> None:
        operations._lean_list = lambda request, org_slug: None
        try:
            get(bearer)()
        finally:
            operations._lean_list = lean_list

    rows.append(ab("list-token", get(bearer), without_lean, args.requests))

    def unprepared() -> None:
        settings.LAKEPLANE_DB_PREPARED_STATEMENTS = False
        try:
            get(bearer)()
        finally:
            settings.LAKEPLANE_DB_PREPARED_STATEMENTS = True

    settings.LAKEPLANE_DB_PREPARED_STATEMENTS = True
    rows.append(ab("list-token-unprepared", get(bearer), unprepared, args.requests))

    planes = []
    for p in range(args.planes):
        account = CloudAccountFactory(
            organization=org, aws_account_id=f"{secrets.randbelow(10**12):012d}"
        )
        plane = ComputePlaneFactory(
            organization=org, cloud_account=account, name=f"bench-{p}-{time.time_ns()}"
        )
        clusters = [
            ClusterFactory(organization=org, compute_plane=plane, name=f"{plane.name}-{c}")
            for c in range(args.clusters)
        ]
        planes.append((plane, clusters))
    now = timezone.now()
    reports = [
        (
            plane.id,
            contract.StatusReport.model_construct(
                agent_id=f"agent-{plane.id}",
                report_id=f"r{plane.id}",
                applied_version=3,
                sent_at=now,
                clusters=[
                    contract.ClusterStatus.model_construct(
                        id=c.id,
                        phase="running",
                        coordinator_ready=True,
                        workers_ready=2,
                        workers_desired=2,
                        observed_at=now,
                    )
                    for c in clusters[:-1]  # the last one unlisted: marked absent
                ],
            ),
        )
        for plane, clusters in planes
    ]

    def statement() -> None:
        with connection.cursor() as cursor:
            cursor.execute(observed._observed_sql(), observed._batch_params(reports))

    def orm() -> None:
        from django.db import transaction

        with transaction.atomic():
            for plane_id, report in reports:
                observed._apply_report(plane_id, report)

    rows.append(ab("observed", statement, orm, max(40, args.requests // 5)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=400, help="calls per variant")
    parser.add_argument("--planes", type=int, default=20, help="status reports per batch")
    parser.add_argument("--clusters", type=int, default=10, help="clusters per plane")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = bench_env(database_url)
    ensure_database(database_url)
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    rows = run(args)
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"load {os.getloadavg()[0]:.1f}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| path | optimised wall / CPU ms | ORM wall / CPU ms | ratio wall | ratio CPU | keep |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        keep = "yes" if r["ratio_wall"] >= KEEP_RATIO else "no"
        print(
            f"| {r['path']} | {r['optimised_wall_ms']:.2f} / {r['optimised_cpu_ms']:.2f} | "
            f"{r['orm_wall_ms']:.2f} / {r['orm_cpu_ms']:.2f} | {r['ratio_wall']:.2f} | "
            f"{r['ratio_cpu']:.2f} | {keep} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
