"""The security gate of issue 16: schemathesis over the served OpenAPI schema, authenticated.

A real gunicorn serves the control plane on the test database; an owner's API token of a fresh
organization authenticates every generated request. schemathesis (the tools venv, ``make
tools``) runs its examples, coverage and fuzzing phases, up to ``EXAMPLES`` generated cases per
operation, with the checks ``not_a_server_error`` (no 5xx), ``status_code_conformance`` (every
status is one the schema lists; the problem+json errors come from core/api/schema.py) and
``response_schema_conformance`` (every body matches its documented schema). Any failure fails
the test, with schemathesis's report (and a curl line to reproduce it) in the message.

Operations that end the caller's own access run in a second pass, after the rest, because once
they succeed every later request is, correctly, a 401 and tests nothing:

- ``DELETE /api/v1/orgs/{org}/tokens/{id}``: schemathesis reuses ids it has seen in responses,
  so it finds and revokes the very token it is using.
- ``DELETE /api/v1/orgs/{org}``: deletes the organization under test.

Nothing is excluded. After the first pass the token must still work (so that pass was
authenticated throughout) and every operation of the schema must have been tested.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from controlplane.core.audit import Actor
from controlplane.core.roles import Role
from controlplane.tenancy import services
from tests.e2e.live import REPO_ROOT, Gunicorn
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEMATHESIS = REPO_ROOT / ".venv-tools" / "bin" / "schemathesis"
# The floor for the org-scoped API; LAKEPLANE_SCHEMATHESIS_EXAMPLES raises it.
EXAMPLES = max(100, int(os.environ.get("LAKEPLANE_SCHEMATHESIS_EXAMPLES", "100")))
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
SELF_ENDING = ["DELETE /api/v1/orgs/{org}/tokens/{id}", "DELETE /api/v1/orgs/{org}"]


def _owner_token(slug: str) -> str:
    org = OrganizationFactory(slug=slug)
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.OWNER)
    return services.create_token(
        actor=Actor(user=user),
        organization=org,
        created_by=user,
        name="schemathesis",
        role=Role.OWNER,
        acting_role=Role.OWNER,
        expires_in_days=1,
    ).secret


def _schemathesis(
    server: Gunicorn, token: str, tmp_path: Path, slug: str, *selection: str
) -> tuple[int, str]:
    # The org is in every path; a generated slug would only ever test the 404 of a stranger's org.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.org" = "{slug}"\n')
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{server.base}/api/schema/?format=json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            # One worker: hypothesis's lambda-source cache is not thread-safe (schemathesis
            # reports it as a runtime error with several workers).
            "--workers",
            "1",
            "--no-shrink",
            "--seed",
            "16",
            "--request-timeout",
            "30",
            *selection,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=800,
    )
    return result.returncode, result.stdout + result.stderr


def _tested(output: str) -> tuple[int, int]:
    found = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert found, output[-3000:]
    return int(found.group(3)), int(found.group(2))


@pytest.mark.usefixtures("transactional_db")
def test_generated_requests_find_no_server_error_and_no_undocumented_answer(
    tmp_path: Path,
) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail(f"{SCHEMATHESIS} is missing: run `make tools`")
    slug = "fuzzed"
    token = _owner_token(slug)
    server = Gunicorn.start(tmp_path, workers=3)
    try:
        schema = requests.get(f"{server.base}/api/schema/?format=json", timeout=30).json()
        operations = sum(
            1 for item in schema["paths"].values() for method in item if method != "parameters"
        )
        excluded = [arg for name in SELF_ENDING for arg in ("--exclude-name", name)]
        rc, output = _schemathesis(server, token, tmp_path, slug, *excluded)
        assert rc == 0, output[-20000:]
        assert _tested(output) == (operations - len(SELF_ENDING), operations), output[-3000:]
        me = requests.get(
            f"{server.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert me.status_code == 200, "the first pass lost its credential; it tested only 401s"

        included = [arg for name in SELF_ENDING for arg in ("--include-name", name)]
        rc, output = _schemathesis(server, token, tmp_path, slug, *included)
        assert rc == 0, output[-20000:]
        assert _tested(output)[0] == len(SELF_ENDING), output[-3000:]
    finally:
        server.stop()
