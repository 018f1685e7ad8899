"""``computeplane.create`` / ``delete`` on a real Celery worker against the emulator.

One worker (prefork, concurrency 1, Redis broker) serves the whole module; it reaches the
in-process emulator over HTTP (``AWS_ENDPOINT_URL``) and the pytest-django test database.

* Crash: for each step K, the step's first create call is held in flight by a ``delay``
  fault, the pool process running it is SIGKILLed, the fault is cleared (the held call is then
  applied, as AWS may apply a request whose sender died), and a fresh pool process resumes
  after the lease: the plane ends ``ready`` with exactly one of each resource.
* Throttling, EKS stuck in CREATING / FAILED, and two tenants' isolation.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import override_settings

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.cloudaccounts.services import start_verification
from controlplane.computeplanes.agentinstall import stop_all_local_agents
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.services import (
    ComputePlaneRequest,
    create_compute_plane,
    delete_compute_plane,
)
from controlplane.core.audit import Actor
from controlplane.core.models import Operation, OperationStep
from controlplane.sandbox.customers import create_customer_role, new_account_id
from controlplane.sandbox.pytest_plugin import Sandbox
from controlplane.sandbox.server import SandboxCloud
from controlplane.tenancy.models import Organization
from tests.computeplanes.test_compute_planes import tagged_resources
from tests.factories import CloudAccountFactory, OrganizationFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2
WAIT = 45.0  # the bound on every wait below; a healthy create takes a few seconds
ACTOR = Actor.system_actor("test")
# How many of each kind one two-AZ compute plane owns (NATs and EIPs: one per AZ).
EXPECTED = {
    "vpcs": 1,
    "subnets": 4,
    "igws": 1,
    "nats": 2,
    "eips": 2,
    "route_tables": 3,
    "security_groups": 2,
    "iam_roles": 3,
    "eks_clusters": 1,
    "eks_node_groups": 1,
    "eks_addons": 1,
    "pod_identity_associations": 1,
    "buckets": 2,
}
# Each AWS step's first create call: holding it keeps the step "in flight" for the kill.
FIRST_CREATE = {
    "vpc": ("ec2", "CreateVpc"),
    "subnets": ("ec2", "CreateSubnet"),
    "internet_gateway": ("ec2", "CreateInternetGateway"),
    "nat_gateways": ("ec2", "AllocateAddress"),
    "route_tables": ("ec2", "CreateRouteTable"),
    "security_groups": ("ec2", "CreateSecurityGroup"),
    "iam": ("iam", "CreateRole"),
    "eks": ("eks", "CreateCluster"),
    "system_nodes": ("eks", "CreateNodegroup"),
    "pod_identity": ("eks", "CreateAddon"),
    "buckets": ("s3", "CreateBucket"),
}


def _database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclasses.dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    agents: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pool_process(self) -> int:
        (child,) = _children(self.process.pid)  # --concurrency=1: one pool process
        return child

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}\n----- worker log -----\n{self.output()}")

    def max_task_seconds(self) -> float:
        return max(
            (float(s) for s in re.findall(r"succeeded in ([0-9.]+)s", self.output())),
            default=0.0,
        )


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None,
    django_db_blocker: Any,
    sandbox_cloud: SandboxCloud,
    tmp_path_factory: pytest.TempPathFactory,
    live_server: Any,
) -> Iterator[Worker]:
    broker_url = str(settings.CELERY_BROKER_URL)
    if not broker_url.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://… (the worker and this test share it)")
    redis.Redis.from_url(broker_url).flushdb()  # no leftover messages from an earlier run
    with django_db_blocker.unblock():
        database_url = _database_url()
    log = tmp_path_factory.mktemp("computeplane-worker") / "worker.log"
    # The create workflow ends with a local agent per plane calling back over HTTP.
    agents = tmp_path_factory.mktemp("agents")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LAKEPLANE_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
        # The emulator flips EKS/NAT state at once; no need to wait 30 s between polls.
        "LAKEPLANE_MAX_POLL_SECONDS": "0.5",
        "AWS_ENDPOINT_URL": sandbox_cloud.endpoint_url,
        "LAKEPLANE_VENDOR_PRINCIPAL": Sandbox.vendor_principal,
        "LAKEPLANE_AGENT_MODE": "sandbox",
        "LAKEPLANE_PUBLIC_URL": live_server.url,
        "LAKEPLANE_LOCAL_AGENTS_DIR": str(agents),
        "LAKEPLANE_AGENT_MAX_WAIT_SECONDS": "1",
        "LAKEPLANE_AGENT_CONNECT_POLL_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "-Q",
                "provisioning,default",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"cp-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Worker(process=process, log=log, agents=agents)
    try:
        running.wait_for(lambda: "ready." in running.output(), "the worker to be ready")
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=WAIT)
        with override_settings(LAKEPLANE_LOCAL_AGENTS_DIR=str(agents)):
            stop_all_local_agents()
        print(f"\nmax task wall time in the worker log: {running.max_task_seconds():.3f}s")


@pytest.fixture
def plane_env(worker: Worker, sandbox: Sandbox, transactional_db: None) -> Iterator[Env]:
    env = Env(worker=worker, sandbox=sandbox)
    yield env
    sandbox.control.hold_new_eks_clusters(False)
    sandbox.control.clear_faults()


@dataclasses.dataclass
class Env:
    worker: Worker
    sandbox: Sandbox

    def verified_account(self, org: Organization, account_id: str | None = None) -> CloudAccount:
        account_id = account_id or self.sandbox.account_id
        account = CloudAccountFactory(organization=org, aws_account_id=account_id)
        role = create_customer_role(
            self.sandbox.endpoint_url,
            external_id=account.external_id,
            account_id=account_id,
            vendor_principal=self.sandbox.vendor_principal,
        )
        account.role_arn = role.role_arn
        account.status = "verified"
        account.save()
        return account

    def create(self, account: CloudAccount, name: str = "analytics") -> ComputePlane:
        plane, _ = create_compute_plane(
            actor=ACTOR,
            organization=account.organization,
            request=ComputePlaneRequest(
                name=name,
                cloud_account=account,
                region="us-east-1",
                vpc_cidr="10.42.0.0/16",
                availability_zones=2,
                kubernetes_version="1.31",
                endpoint_access="private",
                public_access_cidrs=[],
                control_plane_logging=[],
            ),
        )
        return plane  # committed: on_commit has sent advance_operation to Redis

    def finish(self, operation_id: str) -> Operation:
        def done() -> Operation | None:
            op = Operation.objects.get(pk=operation_id)
            return op if op.is_terminal else None

        op: Operation = self.worker.wait_for(done, f"operation {operation_id} to finish")
        return op

    def build(self, account: CloudAccount, name: str = "analytics") -> ComputePlane:
        plane = self.create(account, name)
        op = self.finish(plane.operation_id)
        plane.refresh_from_db()
        assert (op.status, plane.status) == ("succeeded", "ready"), (
            f"{op.error_code}: {op.error_message}\n{self.worker.output()[-4000:]}"
        )
        return plane

    def delete(self, plane: ComputePlane) -> None:
        _, op = delete_compute_plane(actor=ACTOR, plane=plane)
        op = self.finish(op.id)
        assert op.status == "succeeded", f"{op.error_code}: {op.error_message}"

    def resources(self, plane: ComputePlane) -> dict[str, list[str]]:
        sandbox = dataclasses.replace(self.sandbox, account_id=plane.cloud_account.aws_account_id)
        return tagged_resources(sandbox, plane.pk)

    def account_calls(self, account_id: str, since: int = 0) -> int:
        return len(self.sandbox.control.calls(account=account_id, since=since))

    def last_seq(self) -> int:
        return max((c.seq for c in self.sandbox.control.calls()), default=0)


def counts(found: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in found.items()}


def step(operation_id: str, name: str) -> OperationStep:
    return OperationStep.objects.get(operation_id=operation_id, name=name)


def held(sandbox: Sandbox) -> bool:
    return any(rule["kind"] == "delay" and rule["fired"] for rule in sandbox.control.faults())


@pytest.mark.parametrize("crash_step", [*FIRST_CREATE, "install_agent"])
def test_worker_killed_during_each_step_resumes_without_duplicates(
    plane_env: Env, org: Organization, crash_step: str
) -> None:
    env, sandbox = plane_env, plane_env.sandbox
    account = env.verified_account(org)
    if crash_step in FIRST_CREATE:
        service, action = FIRST_CREATE[crash_step]
        sandbox.control.add_fault(
            "delay", service=service, action=action, account=sandbox.account_id, count=1, seconds=60
        )
    plane = env.create(account)
    op_id = plane.operation_id

    if crash_step in FIRST_CREATE:
        env.worker.wait_for(lambda: held(sandbox), f"{crash_step}'s create call to be held")
    else:
        # No AWS call to hold: kill as soon as the step before it has finished, i.e. while the
        # pool process claims or runs install_agent (or has just settled it).
        env.worker.wait_for(
            lambda: step(op_id, "buckets").status == "succeeded", "the buckets step to finish"
        )
    victim = env.worker.pool_process()
    if crash_step in FIRST_CREATE:
        assert step(op_id, crash_step).status == "running"
    os.kill(victim, signal.SIGKILL)
    sandbox.control.clear_faults()  # the held call goes on: applied after its sender died

    op = env.finish(op_id)
    plane.refresh_from_db()
    assert (op.status, plane.status) == ("succeeded", "ready"), (
        f"{op.error_code}: {op.error_message}\n{env.worker.output()[-4000:]}"
    )
    if crash_step in FIRST_CREATE:
        assert step(op_id, crash_step).attempts >= 2  # it really ran again after the kill
    assert victim not in _children(env.worker.process.pid)
    assert counts(env.resources(plane)) == EXPECTED

    env.delete(plane)
    assert {k: v for k, v in env.resources(plane).items() if v} == {}


def test_thirty_percent_throttling_converges_within_twice_the_attempts(
    plane_env: Env, org: Organization
) -> None:
    env, sandbox = plane_env, plane_env.sandbox
    account = env.verified_account(org)
    since = env.last_seq()
    calm = env.build(account, "calm")
    baseline = env.account_calls(sandbox.account_id, since)

    rule = sandbox.control.add_fault("throttle", account=sandbox.account_id, fraction=0.3)
    since = env.last_seq()
    throttled = env.build(account, "throttled")
    attempts = env.account_calls(sandbox.account_id, since)
    fired = next(r for r in sandbox.control.faults() if r["id"] == rule["id"])["fired"]

    assert fired > 0
    assert attempts <= 2 * baseline, (attempts, baseline)
    assert counts(env.resources(throttled)) == EXPECTED
    assert counts(env.resources(calm)) == EXPECTED
    print(f"\nthrottling: {baseline} calls unthrottled, {attempts} with 30% throttled ({fired})")


def _wait_at_eks(env: Env, op_id: str) -> OperationStep:
    def waiting() -> OperationStep | None:
        eks = step(op_id, "eks")
        return eks if eks.status == "running" and "CREATING" in eks.detail else None

    found: OperationStep = env.worker.wait_for(lambda: waiting(), "the eks step to wait")
    return found


def test_eks_stuck_in_creating_frees_the_worker_then_continues_when_active(
    plane_env: Env, org: Organization
) -> None:
    env, sandbox = plane_env, plane_env.sandbox
    account = env.verified_account(org)
    sandbox.control.hold_new_eks_clusters()
    plane = env.create(account)
    _wait_at_eks(env, plane.operation_id)
    polls = step(plane.operation_id, "eks").attempts

    # The single worker is not blocked: another operation runs to completion meanwhile.
    other_org = OrganizationFactory()
    other = CloudAccountFactory(organization=other_org, aws_account_id=new_account_id())
    role = create_customer_role(
        sandbox.endpoint_url,
        external_id=other.external_id,
        account_id=other.aws_account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    _, verification = start_verification(actor=ACTOR, account=other, role_arn=role.role_arn)
    verified = env.finish(verification.id)
    assert verified.status == "succeeded", verified.error_message

    op = Operation.objects.get(pk=plane.operation_id)
    assert op.status == "running"
    # Still waiting, by polls the worker re-schedules (RetryLater), not by one long task.
    env.worker.wait_for(
        lambda: step(op.id, "eks").attempts > polls, "the eks step to be polled again"
    )
    eks = step(op.id, "eks")
    assert (eks.status, op.status) == ("running", "running")
    assert "CREATING" in eks.detail
    plane.refresh_from_db()
    assert plane.status == "provisioning"

    name = plane.resources["eks_cluster_name"]
    sandbox.control.set_eks_cluster_status(sandbox.account_id, name, "ACTIVE")
    op = env.finish(op.id)
    plane.refresh_from_db()
    assert (op.status, plane.status) == ("succeeded", "ready"), op.error_message
    assert counts(env.resources(plane)) == EXPECTED


def test_eks_failed_fails_the_operation_and_delete_cleans_up(
    plane_env: Env, org: Organization
) -> None:
    env, sandbox = plane_env, plane_env.sandbox
    account = env.verified_account(org)
    sandbox.control.hold_new_eks_clusters()
    plane = env.create(account)
    _wait_at_eks(env, plane.operation_id)
    plane.refresh_from_db()
    issue = {
        "code": "Ec2SubnetInvalidConfiguration",
        "message": "One or more subnets have no free IP addresses",
        "resourceIds": plane.resources["private_subnet_ids"][:1],
    }
    sandbox.control.set_eks_cluster_status(
        sandbox.account_id, plane.resources["eks_cluster_name"], "FAILED", issues=[issue]
    )
    op = env.finish(plane.operation_id)
    plane.refresh_from_db()
    assert (op.status, op.error_code, plane.status) == ("failed", "eks_cluster_failed", "failed")
    # The message names the health issue EKS reported, and the subnet it is about.
    assert f"{issue['code']}: {issue['message']}" in op.error_message
    assert issue["resourceIds"][0] in op.error_message
    assert step(op.id, "eks").status == "failed"
    assert step(op.id, "buckets").status == "pending"

    env.delete(plane)
    assert {k: v for k, v in env.resources(plane).items() if v} == {}


def test_two_tenants_and_two_planes_never_touch_each_others_resources(
    plane_env: Env, org: Organization
) -> None:
    env = plane_env
    account_a = env.verified_account(org)
    account_b = env.verified_account(OrganizationFactory(), new_account_id())
    first = env.build(account_a, "first")
    tenant_b = env.build(account_b, "tenant-b")
    before = {p.pk: env.resources(p) for p in (first, tenant_b)}
    assert all(counts(found) == EXPECTED for found in before.values())

    second = env.build(account_a, "second")  # same account, same CIDR, its own resources
    assert counts(env.resources(second)) == EXPECTED
    assert {p.pk: env.resources(p) for p in (first, tenant_b)} == before

    env.delete(second)
    assert {k: v for k, v in env.resources(second).items() if v} == {}
    assert {p.pk: env.resources(p) for p in (first, tenant_b)} == before

    env.delete(tenant_b)
    assert {k: v for k, v in env.resources(tenant_b).items() if v} == {}
    assert env.resources(first) == before[first.pk]
    env.delete(first)
    assert {k: v for k, v in env.resources(first).items() if v} == {}
