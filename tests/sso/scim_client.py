"""A small SCIM 2.0 client written from RFC 7644, for testing Lakeplane's ``/scim/v2``.

It speaks the protocol as an IdP's provisioning agent would and checks the service provider's
side of the contract on every answer: the media type (§3.1 ``application/scim+json``), the
``Location`` header of a created resource (§3.3), the list envelope (§3.4.2), and the error
body (§3.12: the Error schema, ``status`` as a string equal to the HTTP status, ``scimType``).
A protocol violation raises ``AssertionError``; a well-formed SCIM error raises ``ScimFailure``.

    client = ScimClient("https://lakeplane.example.com/scim/v2", token)
    alice = client.create_user("alice@example.com", name={"givenName": "Alice"})
    client.patch_user(alice["id"], [replace("active", False)])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

MEDIA_TYPE = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class ScimFailure(Exception):
    status: int
    scim_type: str | None
    detail: str


def operation(op: str, path: str | None = None, value: Any = None) -> dict[str, Any]:
    """One PATCH operation (§3.5.2): add, replace or remove, with an optional path."""
    body: dict[str, Any] = {"op": op}
    if path is not None:
        body["path"] = path
    if value is not None:
        body["value"] = value
    return body


def replace(path: str | None, value: Any) -> dict[str, Any]:
    return operation("replace", path, value)


class ScimClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Accept"] = MEDIA_TYPE
        if token is not None:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    # --- the wire ------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        headers = {"Content-Type": MEDIA_TYPE} if body is not None or raw is not None else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.http.request(
            method, f"{self.base_url}{path}", data=data, headers=headers, timeout=self.timeout
        )
        if response.status_code == 204:
            assert not response.content, "204 carries no body"
            return None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert content_type == MEDIA_TYPE, f"{method} {path}: Content-Type {content_type!r}"
        payload = response.json()
        if response.status_code >= 400:
            # §3.12: the Error schema; "status" is the HTTP status code as a string.
            assert payload.get("schemas") == [ERROR], payload
            assert payload.get("status") == str(response.status_code), payload
            if response.status_code == 401:
                assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
            raise ScimFailure(response.status_code, payload.get("scimType"), payload["detail"])
        if method == "POST":
            assert response.status_code == 201, response.status_code
            # §3.3: the created resource's URI in Location, the same as meta.location.
            assert response.headers.get("Location") == payload["meta"]["location"], payload
        else:
            assert response.status_code == 200, response.status_code
        return payload

    def _resource(self, payload: dict[str, Any], schema: str, kind: str) -> dict[str, Any]:
        assert schema in payload["schemas"], payload
        assert isinstance(payload["id"], str), payload
        assert payload["id"], payload
        assert payload["meta"]["resourceType"] == kind, payload
        assert payload["meta"]["location"].endswith(f"/{kind}s/{payload['id']}"), payload
        return payload

    def _list(self, path: str, kind: str, schema: str, **params: Any) -> dict[str, Any]:
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items() if v is not None)
        payload = self.request("GET", f"{path}?{query}" if query else path)
        # §3.4.2: the ListResponse envelope.
        assert payload["schemas"] == [LIST_RESPONSE], payload
        assert isinstance(payload["totalResults"], int), payload
        assert payload["itemsPerPage"] == len(payload["Resources"]), payload
        for resource in payload["Resources"]:
            self._resource(resource, schema, kind)
        return payload

    # --- Users ---------------------------------------------------------------------------
    def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER], "userName": user_name, **attributes}
        return self._resource(self.request("POST", "/Users", body), USER, "User")

    def get_user(self, user_id: str) -> dict[str, Any]:
        return self._resource(self.request("GET", f"/Users/{user_id}"), USER, "User")

    def list_users(
        self, filter: str | None = None, start_index: int | None = None, count: int | None = None
    ) -> dict[str, Any]:
        return self._list(
            "/Users", "User", USER, filter=filter, startIndex=start_index, count=count
        )

    def find_user(self, user_name: str) -> dict[str, Any] | None:
        escaped = user_name.replace("\\", "\\\\").replace('"', '\\"')
        found = self.list_users(filter=f'userName eq "{escaped}"')["Resources"]
        assert len(found) <= 1, found
        return found[0] if found else None

    def replace_user(self, user_id: str, user_name: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER], "userName": user_name, **attributes}
        return self._resource(self.request("PUT", f"/Users/{user_id}", body), USER, "User")

    def patch_user(self, user_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"schemas": [PATCH_OP], "Operations": operations}
        return self._resource(self.request("PATCH", f"/Users/{user_id}", body), USER, "User")

    def delete_user(self, user_id: str) -> None:
        self.request("DELETE", f"/Users/{user_id}")

    # --- Groups --------------------------------------------------------------------------
    def create_group(self, display_name: str, member_ids: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        body = {
            "schemas": [GROUP],
            "displayName": display_name,
            "members": [{"value": m} for m in member_ids],
        }
        return self._resource(self.request("POST", "/Groups", body), GROUP, "Group")

    def get_group(self, group_id: str) -> dict[str, Any]:
        return self._resource(self.request("GET", f"/Groups/{group_id}"), GROUP, "Group")

    def list_groups(self, filter: str | None = None) -> dict[str, Any]:
        return self._list("/Groups", "Group", GROUP, filter=filter)

    def patch_group(self, group_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"schemas": [PATCH_OP], "Operations": operations}
        return self._resource(self.request("PATCH", f"/Groups/{group_id}", body), GROUP, "Group")

    def add_members(self, group_id: str, member_ids: list[str]) -> dict[str, Any]:
        return self.patch_group(
            group_id, [operation("add", "members", [{"value": m} for m in member_ids])]
        )

    def remove_member(self, group_id: str, member_id: str) -> dict[str, Any]:
        return self.patch_group(group_id, [operation("remove", f'members[value eq "{member_id}"]')])

    def delete_group(self, group_id: str) -> None:
        self.request("DELETE", f"/Groups/{group_id}")
