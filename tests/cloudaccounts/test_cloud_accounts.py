"""Cloud accounts end to end against the sandbox emulator (over HTTP, through its trust check)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.apps import apps
from django.core import serializers as django_serializers

from controlplane.cloudaccounts.aws import reset_aws_clients
from controlplane.cloudaccounts.models import CloudAccount
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.roles import Role
from controlplane.sandbox.customers import admin_client, create_customer_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(sandbox, settings):
    """Point the control plane at this test's emulator and a fresh customer account."""
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_VENDOR_PRINCIPAL = sandbox.vendor_principal
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from controlplane.celery import app

    app.conf.task_always_eager = True
    reset_aws_clients()
    yield sandbox
    app.conf.task_always_eager = False
    reset_aws_clients()


def _create(caller, account_id="123456789012", **extra):
    body = {"name": "prod", "aws_account_id": account_id, **extra}
    return caller.client.post(f"/api/v1/orgs/{caller.org.slug}/cloud-accounts", body, format="json")


def _verify(caller, account, role_arn, django_capture_on_commit_callbacks):
    url = f"/api/v1/orgs/{caller.org.slug}/cloud-accounts/{account['id']}/verify"
    with django_capture_on_commit_callbacks(execute=True):
        response = caller.client.post(url, {"role_arn": role_arn}, format="json")
    return response


def test_create_generates_a_strong_external_id(owner):
    response = _create(owner)
    assert response.status_code == 201, response.content
    body = response.json()
    assert re.fullmatch(r"[A-Za-z0-9]{32,64}", body["external_id"])
    assert body["status"] == "pending_role"
    assert body["id"].startswith("acct_")
    onboarding = body["onboarding"]
    assert body["external_id"] in onboarding["quick_create_url"]
    condition = json.dumps(onboarding["trust_policy"])
    assert body["external_id"] in condition
    assert "sts:ExternalId" in condition
    other = _create(owner, account_id="210987654321").json()
    assert other["external_id"] != body["external_id"]


def test_client_supplied_external_id_is_refused_never_used(owner):
    response = _create(owner, external_id="A" * 40)
    assert response.status_code == 400
    assert "external_id" in response.json()["errors"]
    assert not CloudAccount.objects.filter(external_id="A" * 40).exists()
    created = _create(owner).json()
    patched = owner.client.patch(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{created['id']}",
        {"external_id": "B" * 40},
        format="json",
    )
    assert patched.status_code == 400
    assert CloudAccount.objects.get(pk=created["id"]).external_id == created["external_id"]


@pytest.mark.parametrize("bad", ["12345", "abcdefghijkl", "1234567890123", ""])
def test_aws_account_id_must_be_12_digits(owner, bad):
    response = _create(owner, account_id=bad)
    assert response.status_code == 400
    assert "aws_account_id" in response.json()["errors"]


def test_same_aws_account_twice_in_one_org_is_refused(owner):
    assert _create(owner).status_code == 201
    again = _create(owner)
    assert again.status_code == 422
    assert "aws_account_id" in again.json()["errors"]


@pytest.mark.parametrize(
    "role_arn",
    [
        "not-an-arn",
        "arn:aws:iam::999999999999:role/lakeplane-access",  # another account
        "arn:aws:s3:::some-bucket",
    ],
)
def test_role_arn_must_be_a_role_in_the_same_account(
    owner, role_arn, django_capture_on_commit_callbacks
):
    account = _create(owner).json()
    response = _verify(owner, account, role_arn, django_capture_on_commit_callbacks)
    assert response.status_code == 422
    assert "role_arn" in response.json()["errors"]
    assert Operation.objects.count() == 0


def test_viewer_and_member_cannot_manage_cloud_accounts(org, make_caller):
    for role in (Role.VIEWER, Role.MEMBER):
        caller = make_caller(org, role)
        assert _create(caller).status_code == 403
        assert caller.client.get(f"/api/v1/orgs/{org.slug}/cloud-accounts").status_code == 200


def test_cloudformation_stack_yields_a_role_that_verifies(
    owner, emulator, django_capture_on_commit_callbacks
):
    account = _create(owner, account_id=emulator.account_id).json()
    template = owner.client.get(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account['id']}/onboarding/cloudformation"
    ).json()
    assert template["Parameters"]["ExternalId"]["Default"] == account["external_id"]

    # The customer creates the stack from exactly the template the API served.
    cfn = admin_client(emulator.endpoint_url, "cloudformation", emulator.account_id)
    cfn.create_stack(
        StackName="lakeplane-access",
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM"],
    )
    outputs = cfn.describe_stacks(StackName="lakeplane-access")["Stacks"][0]["Outputs"]
    role_arn = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RoleArn")

    response = _verify(owner, account, role_arn, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    op_id = response.json()["operation"]["id"]
    assert response["Location"] == f"/api/v1/orgs/{owner.org.slug}/operations/{op_id}"

    operation = owner.client.get(response["Location"]).json()
    assert operation["status"] == "succeeded", operation
    assert [s["status"] for s in operation["steps"]] == ["succeeded", "succeeded"]
    detail = owner.client.get(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account['id']}"
    ).json()
    assert detail["status"] == "verified", detail["checks"]
    assert detail["checks"]
    assert all(check["ok"] for check in detail["checks"])
    assert detail["verified_at"] is not None
    assert detail["role_arn"] == role_arn


def test_role_without_external_id_condition_fails_with_the_reason(
    owner, emulator, django_capture_on_commit_callbacks
):
    account = _create(owner, account_id=emulator.account_id).json()
    iam = admin_client(emulator.endpoint_url, "iam", emulator.account_id)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": emulator.vendor_principal},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="careless", AssumeRolePolicyDocument=json.dumps(trust))

    _verify(owner, account, role["Role"]["Arn"], django_capture_on_commit_callbacks)

    detail = CloudAccount.objects.get(pk=account["id"])
    assert detail.status == "failed"
    failed = [c for c in detail.checks if not c["ok"]]
    assert failed, detail.checks
    assert any("WITHOUT the external ID" in c["detail"] for c in failed)


def test_wrong_external_id_is_refused_by_the_trust_check(
    owner, emulator, django_capture_on_commit_callbacks
):
    account = _create(owner, account_id=emulator.account_id).json()
    customer = create_customer_role(
        emulator.endpoint_url,
        external_id="Z" * 40,  # the customer pasted someone else's ID
        account_id=emulator.account_id,
        vendor_principal=emulator.vendor_principal,
    )
    _verify(owner, account, customer.role_arn, django_capture_on_commit_callbacks)
    detail = CloudAccount.objects.get(pk=account["id"])
    assert detail.status == "failed"
    assert not next(c for c in detail.checks if "external" in c["name"].lower())["ok"]


def test_rotation_needs_reverification(owner, emulator, django_capture_on_commit_callbacks):
    account = _create(owner, account_id=emulator.account_id).json()
    customer = create_customer_role(
        emulator.endpoint_url,
        external_id=account["external_id"],
        account_id=emulator.account_id,
        vendor_principal=emulator.vendor_principal,
    )
    _verify(owner, account, customer.role_arn, django_capture_on_commit_callbacks)
    assert CloudAccount.objects.get(pk=account["id"]).status == "verified"

    rotated = owner.client.post(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account['id']}/rotate-external-id"
    ).json()
    assert rotated["external_id"] != account["external_id"]
    assert rotated["status"] == "pending_role"
    assert AuditEvent.objects.filter(action="cloudaccount.external_id_rotated").count() == 1

    # The role still trusts the old ID only, so verification now fails.
    _verify(owner, rotated, customer.role_arn, django_capture_on_commit_callbacks)
    assert CloudAccount.objects.get(pk=account["id"]).status == "failed"


def test_terraform_artifacts_carry_the_accounts_inputs(owner):
    account = _create(owner).json()
    body = owner.client.get(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account['id']}/onboarding/terraform"
    ).json()
    assert body["variables"]["external_id"] == account["external_id"]
    assert body["variables"]["tenant_tag"] == owner.org.slug
    assert account["external_id"] in body["tfvars"]
    assert 'module "lakeplane_customer_role"' in body["module_call"]
    # The schema the console's types come from describes exactly this answer.
    from controlplane.cloudaccounts.api.serializers import TerraformOnboardingSerializer

    assert set(body) == set(TerraformOnboardingSerializer().fields)
    assert TerraformOnboardingSerializer(data=body).is_valid()


def test_no_credential_reaches_the_database_logs_or_api(
    owner, emulator, django_capture_on_commit_callbacks, caplog
):
    """Plant: the STS credentials the emulator hands out. Search every place for them."""
    from moto.sts.models import sts_backends

    caplog.set_level(logging.DEBUG)
    account = _create(owner, account_id=emulator.account_id).json()
    customer = create_customer_role(
        emulator.endpoint_url,
        external_id=account["external_id"],
        account_id=emulator.account_id,
        vendor_principal=emulator.vendor_principal,
    )
    response = _verify(owner, account, customer.role_arn, django_capture_on_commit_callbacks)
    assert CloudAccount.objects.get(pk=account["id"]).status == "verified"

    role_name = customer.role_arn.rsplit("/", 1)[-1]
    issued = [
        value
        for backend in sts_backends.values()
        for region_backend in backend.values()
        for role in region_backend.assumed_roles
        if f"/{role_name}/" in role.arn
        for value in (role.secret_access_key, role.session_token)
    ]
    assert issued, "the emulator issued no credentials to search for"

    api_text = response.content.decode()
    for path in ("cloud-accounts", f"cloud-accounts/{account['id']}", "operations", "audit-events"):
        api_text += owner.client.get(f"/api/v1/orgs/{owner.org.slug}/{path}").content.decode()
    database = "".join(
        django_serializers.serialize("json", model.objects.all()) for model in apps.get_models()
    )
    logs = caplog.text
    for secret in issued:
        assert secret not in api_text
        assert secret not in database
        assert secret not in logs
