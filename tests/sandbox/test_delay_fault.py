"""The ``delay`` fault: a call held in flight until released, then applied."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from controlplane.providers.aws import generate_external_id, policies
from controlplane.sandbox.customers import VENDOR_PRINCIPAL, admin_client
from controlplane.sandbox.pytest_plugin import Sandbox


def _fired(sandbox: Sandbox) -> int:
    return sum(rule["fired"] for rule in sandbox.control.faults())


def test_delay_holds_the_call_until_cleared_then_applies_it(sandbox: Sandbox) -> None:
    iam = admin_client(sandbox.endpoint_url, "iam", sandbox.account_id)
    trust = str(policies.trust_policy(VENDOR_PRINCIPAL, generate_external_id()))
    sandbox.control.add_fault("delay", service="iam", action="CreateRole", count=1, seconds=60)
    answers: list[str] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            iam.create_role(RoleName="lakeplane-held", AssumeRolePolicyDocument=trust)["Role"][
                "RoleName"
            ]
        )
    )
    sender.start()
    deadline = time.monotonic() + 10
    while _fired(sandbox) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _fired(sandbox) == 1

    # Held: not applied, not logged, and the emulator still serves everyone else.
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName="lakeplane-held")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    assert sender.is_alive()
    assert "CreateRole" not in [c.action for c in sandbox.control.calls(sandbox.account_id)]

    sandbox.control.clear_faults()
    sender.join(timeout=10)
    assert answers == ["lakeplane-held"]
    assert iam.get_role(RoleName="lakeplane-held")["Role"]["RoleName"] == "lakeplane-held"
    created = [c for c in sandbox.control.calls(sandbox.account_id) if c.action == "CreateRole"]
    assert [(c.outcome, c.mutating) for c in created] == [("ok", True)]


def test_delay_applies_the_call_after_its_seconds(sandbox: Sandbox) -> None:
    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    sandbox.control.add_fault("delay", service="ec2", action="CreateVpc", seconds=0.2)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]
    assert _fired(sandbox) == 1


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "delay", "seconds": -1},
        {"kind": "delay", "seconds": 10_000},
        {"kind": "delay", "seconds": "soon"},
        {"kind": "throttle", "seconds": 1},
    ],
)
def test_bad_delay_rules_are_refused(sandbox: Sandbox, rule: dict[str, object]) -> None:
    response = requests.post(f"{sandbox.endpoint_url}/_lakeplane/faults", json=rule, timeout=5)
    assert response.status_code == 400
    assert "seconds" in response.json()["error"]
