"""The Terraform root module of Lakeplane's own AWS account (infra/terraform/controlplane).

Providers cannot be downloaded here, so ``terraform validate``/``plan``/``test`` cannot run;
what can run offline does, and fails the suite: ``terraform fmt -check``, checkov's static
analysis (zero failed checks; each skip in the code carries its reason), hadolint on the
Dockerfile, and structural checks of the resources the runbook relies on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.hcl import load_hcl

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "infra" / "terraform" / "controlplane"
TOOLS = REPO / ".venv-tools" / "bin"


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` (make test does)")
    return str(path)


def _resources() -> dict[str, dict[str, Any]]:
    """``{"aws_db_instance": {"this": {...}}, ...}`` over every file of the module."""
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in load_hcl(path.read_text()).get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    merged.setdefault(kind, {})[name] = body
    return merged


def test_terraform_fmt_check_passes(tmp_path: Path) -> None:
    binary = shutil.which("terraform") or shutil.which("tofu")
    if binary is None:
        pytest.fail("terraform (or tofu) is required for `terraform fmt -check`")
    result = subprocess.run(
        [binary, "fmt", "-check", "-diff", "-recursive", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            _tool("checkov"),
            "-d",
            str(MODULE),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        # No platform key: checkov runs its built-in policies only, offline.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for c in report["results"]["failed_checks"]]  # fmt: skip
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 150  # the module was really scanned
    # Every skip says why.
    assert report["results"]["skipped_checks"]
    for check in report["results"]["skipped_checks"]:
        assert check["check_result"].get("suppress_comment"), check["check_id"]


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_data_stores_are_multi_az_encrypted_and_private() -> None:
    r = _resources()
    db = r["aws_db_instance"]["this"]
    assert db["engine"] == "postgres"
    assert db["multi_az"] is True
    assert db["storage_encrypted"] is True
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] is True
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert db["manage_master_user_password"] is True  # no password in state or in git
    redis = r["aws_elasticache_replication_group"]["this"]
    assert redis["multi_az_enabled"] is True
    assert redis["automatic_failover_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert redis["at_rest_encryption_enabled"] is True
    for bucket in ("artifacts", "access_logs"):
        block = r["aws_s3_bucket_public_access_block"][bucket]
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls",
                 "restrict_public_buckets")  # fmt: skip
        assert all(block[k] is True for k in flags), bucket
    assert r["aws_kms_key"]["controlplane"]["enable_key_rotation"] is True


def test_the_vendor_principal_is_the_role_the_overlays_run_as() -> None:
    r = _resources()
    role = r["aws_iam_role"]["controlplane"]
    assert role["name"] == "${local.name}-controlplane"
    association = r["aws_eks_pod_identity_association"]["controlplane"]
    sa = (REPO / "infra" / "controlplane" / "base" / "serviceaccount.yaml").read_text()
    assert f"name: {association['service_account']}" in sa
    assert association["namespace"] == "lakeplane"
    # It may assume customer roles only under the path the onboarding template uses.
    policies = (MODULE / "iam.tf").read_text()
    assert "role/lakeplane-access/*" in policies
    onboarding = (REPO / "infra" / "modules" / "customer-role" / "main.tf").read_text()
    assert 'path                 = "/lakeplane-access/"' in onboarding
