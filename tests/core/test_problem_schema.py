"""The served schema declares the problem+json errors (core/api/schema.py), and real error
bodies match its Problem component. The live, generated version of this is
tests/e2e/test_schemathesis.py."""

from __future__ import annotations

import jsonschema
import pytest

from controlplane.core.roles import Role


@pytest.fixture
def schema(client):
    return client.get("/api/schema/?format=json").json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_declares_its_problem_responses(schema):
    problem = {"$ref": "#/components/schemas/Problem"}
    for name, response in schema["components"]["responses"].items():
        assert response["content"] == {"application/problem+json": {"schema": problem}}, name
    checked = 0
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert {"400", "401", "403"} <= responses.keys(), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method in ("post", "patch", "put", "delete"):
            assert "409" in responses, (method, path)
        if "requestBody" in operation:
            assert {"413", "415", "422"} <= responses.keys(), (method, path)
        checked += 1
    assert checked > 50
    assert "404" not in schema["paths"]["/api/v1/me"]["get"]["responses"]
    assert "409" not in schema["paths"]["/api/v1/orgs/{org}/clusters"]["get"]["responses"]


def test_real_error_bodies_match_the_problem_component(schema, org, make_caller, client):
    problem = schema["components"]["schemas"]["Problem"]
    viewer = make_caller(org, Role.VIEWER)
    owner = make_caller(org, Role.OWNER)
    answers = [
        client.get(f"/api/v1/orgs/{org.slug}/clusters"),  # 401
        viewer.client.post(f"/api/v1/orgs/{org.slug}/tokens", {}, format="json"),  # 403
        owner.client.get(f"/api/v1/orgs/{org.slug}/clusters/cl_missing"),  # 404
        owner.client.post(f"/api/v1/orgs/{org.slug}/clusters", {"name": 3}, format="json"),
        owner.client.get(f"/api/v1/orgs/{org.slug}/billing/statements/2026-13"),  # 422
        owner.client.post(
            f"/api/v1/orgs/{org.slug}/catalogs", "{", content_type="application/json"
        ),  # 400
    ]
    assert [a.status_code for a in answers] == [401, 403, 404, 400, 422, 400]
    for answer in answers:
        assert answer["Content-Type"] == "application/problem+json"
        jsonschema.validate(answer.json(), problem)
