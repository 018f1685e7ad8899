from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from controlplane.tenancy.models import ApiToken, Membership, Organization


def run_bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_bootstrap_prints_one_token_line_that_works():
    output = run_bootstrap("--org", "acme", "--email", "Ops@Example.com")
    lines = output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("token: lpt_")
    token = lines[0].removeprefix("token: ")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "ops@example.com"
    assert me.json()["memberships"] == [{"org": "acme", "role": "owner"}]


@pytest.mark.django_db
def test_bootstrap_is_idempotent_and_issues_a_new_token():
    first = run_bootstrap("--org", "acme", "--email", "ops@example.com").split()[-1]
    second = run_bootstrap("--org", "acme", "--email", "ops@example.com").split()[-1]
    assert first != second
    assert Organization.objects.filter(slug="acme").count() == 1
    assert Membership.objects.filter(organization__slug="acme").count() == 1
    assert ApiToken.objects.filter(organization__slug="acme").count() == 2


@pytest.mark.django_db
def test_bootstrap_rejects_bad_slug():
    with pytest.raises(CommandError):
        run_bootstrap("--org", "Not A Slug", "--email", "ops@example.com")
