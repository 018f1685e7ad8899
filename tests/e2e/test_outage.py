"""Broker and database outages (issue 16, item 3): the API answers 503 problem+json, nothing is
lost, and everything resumes when the dependency is back.

gunicorn, a Celery worker and celery beat reach PostgreSQL and Redis through TCP proxies the
test cuts (every open connection dies, new ones are refused) and restores, as a network
partition or a failover would. The test itself reads the database directly.

- Broker down: cloud-account verifications are still accepted (202): the operation is
  committed in PostgreSQL with its due time, and only its message cannot be sent. ``/readyz``
  answers 503. Nothing runs while the broker is away; once it is back the stalled-operation
  sweep sends the lost messages and every verification succeeds exactly once.
- Database down: API calls answer 503 ``application/problem+json`` with ``Retry-After`` (never
  500), ``/healthz`` stays 200, ``/readyz`` 503. Once it is back the same calls answer again
  and a verification started then succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.core.audit import Actor
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.roles import Role
from controlplane.sandbox.customers import create_customer_role, new_account_id
from controlplane.sandbox.pytest_plugin import Sandbox
from controlplane.tenancy import services as tenancy
from controlplane.tenancy.models import Organization
from tests.e2e.live import Gunicorn, Proxy, database_url
from tests.e2e.test_horizontal_scale import _start_beat
from tests.e2e.test_worker_crash import Worker, Workers
from tests.factories import CloudAccountFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SLUG = "outage"
WAIT = 300.0
STALLED_SECONDS = 5


class Plane:
    """The control plane behind its two proxies."""

    def __init__(self, tmp_path: Path, sandbox: Sandbox, token: str) -> None:
        db, broker = urlsplit(database_url()), urlsplit(str(settings.CELERY_BROKER_URL))
        self.db = Proxy(db.hostname or "127.0.0.1", db.port or 5432)
        self.broker = Proxy(broker.hostname or "127.0.0.1", broker.port or 6379)
        self.token = token
        self.env = {
            "DATABASE_URL": self.db.url(database_url()),
            "CELERY_BROKER_URL": self.broker.url(str(settings.CELERY_BROKER_URL)),
            "AWS_ENDPOINT_URL": sandbox.endpoint_url,
            "LAKEPLANE_VENDOR_PRINCIPAL": sandbox.vendor_principal,
            "LAKEPLANE_STALLED_OPERATION_SECONDS": str(STALLED_SECONDS),
            "LAKEPLANE_STALL_SWEEP_SECONDS": "1",
            "LAKEPLANE_MAX_POLL_SECONDS": "0.5",
            "CELERY_IMPORTS": "",
        }
        self.web = Gunicorn.start(tmp_path, name="web", **self.env)
        self.workers = Workers(broker_url=str(settings.CELERY_BROKER_URL), tmp_path=tmp_path)
        self.workers.start(**self.env)
        self.beat: Worker = _start_beat(tmp_path, self.env)

    def stop(self) -> None:
        self.beat.kill_group()
        self.web.kill()
        for worker in self.workers.started:
            worker.kill_group()

    def logs(self) -> str:
        return (
            f"{self.workers.logs()[-5000:]}\n----- web -----\n{self.web.output()[-3000:]}\n"
            f"----- beat -----\n{self.beat.output()[-2000:]}"
        )

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.web.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}\n{self.logs()}")


@pytest.fixture
def plane(transactional_db: None, sandbox: Sandbox, tmp_path: Path) -> Iterator[Plane]:
    if not str(settings.CELERY_BROKER_URL).startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://…")
    org = OrganizationFactory(slug=SLUG)
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.OWNER)
    token = tenancy.create_token(
        actor=Actor(user=user),
        organization=org,
        created_by=user,
        name="outage",
        role=Role.OWNER,
        acting_role=Role.OWNER,
        expires_in_days=1,
    ).secret
    running = Plane(tmp_path, sandbox, token)
    try:
        yield running
    finally:
        running.stop()


def _account(sandbox: Sandbox) -> tuple[CloudAccount, str]:
    account_id = new_account_id()
    account = CloudAccountFactory(
        organization=Organization.objects.get(slug=SLUG),
        aws_account_id=account_id,
    )
    role = create_customer_role(
        sandbox.endpoint_url,
        external_id=account.external_id,
        account_id=account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    return account, role.role_arn


def _verify(plane: Plane, account: CloudAccount, role_arn: str) -> str:
    answer = plane.call(
        "POST", f"/api/v1/orgs/{SLUG}/cloud-accounts/{account.id}/verify", {"role_arn": role_arn}
    )
    assert answer.status_code == 202, (answer.status_code, answer.text, plane.logs())
    return str(answer.json()["operation"]["id"])


def _succeeded_once(plane: Plane, ops: list[str]) -> None:
    plane.wait_for(
        lambda: Operation.objects.filter(id__in=ops, status="succeeded").count() == len(ops),
        f"operations {ops} to succeed",
    )
    for op in ops:
        ends = AuditEvent.objects.filter(target_id=op, action__regex=r"\.(succeeded|failed)$")
        assert list(ends.values_list("action", flat=True)) == [
            "operation.cloudaccount.verify.succeeded"
        ]


def _unavailable(answer: requests.Response) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert (body["status"], body["type"].rsplit("/", 1)[1]) == (503, "unavailable")


def test_broker_and_database_outages_answer_503_lose_nothing_and_resume(
    plane: Plane, sandbox: Sandbox
) -> None:
    accounts = [_account(sandbox) for _ in range(4)]
    assert plane.call("GET", "/readyz").status_code == 200

    # --- the broker goes away -------------------------------------------------------------
    plane.broker.cut()
    assert plane.call("GET", "/readyz").status_code == 503
    accepted = [_verify(plane, account, arn) for account, arn in accounts[:3]]
    listed = plane.call("GET", f"/api/v1/orgs/{SLUG}/operations")
    assert listed.status_code == 200  # reading needs only the database
    # Nothing can have run: no worker can be told. (A state, not a timing: the messages
    # were never published.)
    assert set(Operation.objects.filter(id__in=accepted).values_list("status", flat=True)) == {
        "queued"
    }
    plane.broker.restore()
    _succeeded_once(plane, accepted)

    # --- the database goes away -----------------------------------------------------------
    plane.db.cut()
    assert plane.call("GET", "/healthz").status_code == 200
    assert plane.call("GET", "/readyz").status_code == 503
    _unavailable(plane.call("GET", f"/api/v1/orgs/{SLUG}/cloud-accounts"))
    account, arn = accounts[3]
    _unavailable(
        plane.call(
            "POST", f"/api/v1/orgs/{SLUG}/cloud-accounts/{account.id}/verify", {"role_arn": arn}
        )
    )
    plane.db.restore()
    plane.wait_for(
        lambda: plane.call("GET", f"/api/v1/orgs/{SLUG}/cloud-accounts").status_code == 200,
        "the API to answer again",
    )
    _succeeded_once(plane, [_verify(plane, account, arn)])
    assert Operation.objects.count() == 4  # nothing duplicated, nothing lost
