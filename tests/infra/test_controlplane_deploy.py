"""The control plane's own deployment (infra/controlplane, Dockerfile), checked offline."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "infra" / "controlplane" / "overlays"
KUBERNETES_VERSION = "1.32"


def _build(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to build the control plane's Kustomize overlays")
    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [o for o in yaml.safe_load_all(out) if o]


@pytest.mark.parametrize("overlay", ["sandbox", "production"])
def test_every_overlay_builds_and_passes_strict_validation(overlay: str) -> None:
    objects = _build(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "Service"} <= kinds  # fmt: skip
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_production_runs_web_replicas_one_beat_and_non_root_everywhere() -> None:
    objects = _build("production")
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert deployments["lakeplane-web"]["spec"]["replicas"] == 3
    beat = deployments["lakeplane-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"
    web = deployments["lakeplane-web"]["spec"]["template"]["spec"]
    probes = web["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["initContainers"][0]["name"] == "wait-for-migrations"
    # The image collects the console's static files at build time; the ConfigMap must not move
    # STATIC_ROOT away from them.
    (config,) = (o for o in objects if o["kind"] == "ConfigMap")
    assert "STATIC_ROOT" not in config["data"]
    for dep in [*deployments.values(), *(o for o in objects if o["kind"] == "Job")]:
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert "limits" in container["resources"]
            assert "requests" in container["resources"]
            assert container["image"].startswith("ghcr.io/lakeplane/controlplane:")


def test_the_image_is_multi_stage_non_root_and_installs_the_runtime_lock_only() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 3
    assert all(":" in image and not image.endswith(":latest") for image in froms)
    assert "USER 10001" in dockerfile
    assert "requirements.lock" in dockerfile
    assert "requirements-dev.lock" not in dockerfile
    assert "--require-hashes" in dockerfile
