"""The agent's install manifests: valid, namespaced RBAC, committed Kustomize base up to date."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from computeplane_agent.install import install_manifests
from computeplane_agent.kustomize import kustomize_files

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "infra" / "kustomize" / "computeplane-agent"


@pytest.mark.parametrize("version", ["1.29", "1.30", "1.31", "1.32"])
def test_install_manifests_are_valid(version: str) -> None:
    for obj in install_manifests(control_plane_url="https://cp.example.com", bootstrap_token="t"):
        kubernetes_validate.validate(obj, version, strict=True)


def test_rbac_is_limited_to_lakeplane_namespaces() -> None:
    objects = install_manifests(control_plane_url="https://cp.example.com")
    kinds = {o["kind"] for o in objects}
    assert "ClusterRole" not in kinds
    assert "ClusterRoleBinding" not in kinds
    for obj in objects:
        if obj["kind"] in ("Role", "RoleBinding"):
            assert obj["metadata"]["namespace"] == "lakeplane-workloads"
    [secret] = [o for o in objects if o["kind"] == "Secret"]
    assert secret["stringData"] == {"bootstrap-token": ""}


def test_the_agent_runs_on_the_untainted_system_nodes_as_its_pod_identity_account() -> None:
    objects = install_manifests(control_plane_url="https://cp.example.com")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    # Every other node group is tainted; the system node group is labelled so and untainted.
    assert pod["nodeSelector"] == {"lakeplane.io/node-group": "system"}
    assert "tolerations" not in pod
    # The Pod Identity association the platform creates names this namespace and account.
    assert (deployment["metadata"]["namespace"], pod["serviceAccountName"]) == (
        "lakeplane-system",
        "lakeplane-agent",
    )
    committed = yaml.safe_load((BASE / "deployment-lakeplane-agent.yaml").read_text())
    assert committed["spec"]["template"]["spec"]["nodeSelector"] == pod["nodeSelector"]


def test_committed_kustomize_base_equals_the_generated_one() -> None:
    expected = kustomize_files()
    committed = {p.name: p.read_text() for p in BASE.glob("*.yaml")}
    assert committed == expected


def test_kustomize_builds_the_base_offline() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, check=True
    ).stdout
    objects = list(yaml.safe_load_all(built))
    assert len(objects) == len(install_manifests(control_plane_url="x"))


def test_install_manifests_command_prints_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "computeplane_agent", "install-manifests",
         "--control-plane-url", "https://cp.example.com", "--bootstrap-token", "tok-123"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    objects = list(yaml.safe_load_all(result.stdout))
    assert objects == install_manifests(
        control_plane_url="https://cp.example.com", bootstrap_token="tok-123"
    )


def test_run_without_configuration_refuses_to_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "computeplane_agent", "run"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "LAKEPLANE_CONTROL_PLANE_URL is required" in result.stderr
