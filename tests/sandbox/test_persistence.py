"""The emulator's AWS state in a file: kept across a stop (SIGTERM, as ``make run`` stops it) and
a start, ids included; refused loudly — never half-restored — when taken by another moto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.sandbox import persistence
from controlplane.sandbox.control import SandboxControl
from controlplane.sandbox.customers import admin_client, new_account_id

REPO = Path(__file__).resolve().parents[2]
# Each test starts emulator processes (moto's import and a new account's EC2 take seconds).
pytestmark = pytest.mark.e2e

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


class Emulator:
    def __init__(self, state: Path) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "controlplane.sandbox", "serve", "--port", "0"),
                *("--state-file", str(state), "--snapshot-seconds", "3600"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        for line in self.proc.stdout:  # restore messages come first, then the URL
            self.lines.append(line)
            if line.startswith("sandbox cloud on "):
                self.url = line.split()[3]
                break
        else:
            raise AssertionError("".join(self.lines))
        self._rest = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout or []))
        self._rest.start()

    def client(self, service: str, account: str) -> Any:
        return admin_client(self.url, service, account)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0
        self._rest.join(timeout=10)
        return "".join(self.lines)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    return tmp_path / "emulator-state.pickle"


def build(emulator: Emulator, account: str) -> dict[str, str]:
    ec2, iam, eks = (emulator.client(s, account) for s in ("ec2", "iam", "eks"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    role = iam.create_role(RoleName="lakeplane-x", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    eks.create_cluster(name="plane", roleArn=role, resourcesVpcConfig={"subnetIds": [subnet]})
    group = eks.create_nodegroup(
        clusterName="plane", nodegroupName="workers", subnets=[subnet], nodeRole=role
    )["nodegroup"]["nodegroupArn"]
    eks.create_addon(clusterName="plane", addonName="eks-pod-identity-agent")  # the layer's own
    return {"vpc": vpc, "subnet": subnet, "role": role, "nodegroup": group}


def test_resources_and_their_ids_survive_a_stop_and_start(state: Path) -> None:
    account = new_account_id()
    first = Emulator(state)
    made = build(first, account)
    stopped = first.stop()
    assert "emulator state saved" in stopped
    assert (
        json.loads(state.read_bytes().split(b"\n", 1)[0])["moto"] == persistence.versions()["moto"]
    )

    second = Emulator(state)
    try:
        assert "AWS state was restored" in "".join(second.lines)
        ec2, iam, eks = (second.client(s, account) for s in ("ec2", "iam", "eks"))
        assert ec2.describe_vpcs(VpcIds=[made["vpc"]])["Vpcs"][0]["VpcId"] == made["vpc"]
        assert ec2.describe_subnets(SubnetIds=[made["subnet"]])["Subnets"]
        assert iam.get_role(RoleName="lakeplane-x")["Role"]["Arn"] == made["role"]
        group = eks.describe_nodegroup(clusterName="plane", nodegroupName="workers")["nodegroup"]
        assert group["nodegroupArn"] == made["nodegroup"]
        assert eks.list_addons(clusterName="plane")["addons"] == ["eks-pod-identity-agent"]
        # and it is a working cloud, not a picture of one: changes apply and are kept too
        eks.delete_nodegroup(clusterName="plane", nodegroupName="workers")
    finally:
        second.stop()
    third = Emulator(state)
    try:
        assert third.client("eks", account).list_nodegroups(clusterName="plane")["nodegroups"] == []
    finally:
        third.stop()


def test_a_snapshot_of_another_moto_is_refused_loudly_and_kept_aside(state: Path) -> None:
    account = new_account_id()
    first = Emulator(state)
    made = build(first, account)
    first.stop()
    header, payload = state.read_bytes().split(b"\n", 1)
    manifest = json.loads(header) | {"moto": "0.0.1"}
    state.write_bytes(json.dumps(manifest).encode() + b"\n" + payload)

    second = Emulator(state)
    try:
        said = "".join(second.lines)
        assert "NOT restored" in said
        assert "moto 0.0.1" in said
        assert "degraded" in said
        assert "repair" in said
        ec2 = second.client("ec2", account)
        assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [made["vpc"]]}])["Vpcs"]
        aside = state.with_name(state.name + persistence.UNRESTORABLE_SUFFIX)
        assert aside.exists()
        assert not state.exists()
        assert SandboxControl(second.url).healthy()
    finally:
        second.stop()


def test_a_snapshot_that_does_not_load_is_refused(state: Path) -> None:
    state.write_bytes(json.dumps(persistence.versions()).encode() + b"\nnot a pickle")
    emulator = Emulator(state)
    try:
        assert "NOT restored" in "".join(emulator.lines)
        assert "could not be loaded" in "".join(emulator.lines)
    finally:
        emulator.stop()


def test_nothing_is_written_while_nothing_changed(state: Path) -> None:
    emulator = Emulator(state)
    emulator.client("ec2", new_account_id()).describe_vpcs()  # reads change nothing
    said = emulator.stop()
    assert not state.exists()
    assert "saved" not in said
