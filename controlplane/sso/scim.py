"""SCIM 2.0 provisioning (RFC 7643 resources, RFC 7644 protocol) for one organization.

The organization's IdP creates, changes, deactivates and deletes the people of the
organization (``/Users``) and the groups they are in (``/Groups``). Membership follows: an
active user gets the role their groups map to (the same group-role mapping as sign-in), a
deactivated or deleted one loses the membership and their API tokens, as at sign-in.

Everything here is framework-free of HTTP: the views parse and render, these functions check
and write (one transaction, audited) and raise :class:`ScimError` with the RFC 7644 §3.12
``status``/``scimType`` the view turns into an error response.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.sso.models import SCIM_TOKEN_PREFIX, ScimGroup, ScimToken, ScimUser
from controlplane.sso.services import role_for_groups, sync_membership
from controlplane.tenancy import services as tenancy
from controlplane.tenancy.models import Membership, Organization

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

# Pages of a list: RFC 7644 §3.4.2.4 lets the provider cap ``count``.
DEFAULT_COUNT = 100
MAX_COUNT = 200
# last_used_at is written at most once a minute per token.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def _invalid(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


# --- tokens ------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(*, actor: Actor, organization: Organization, name: str) -> tuple[ScimToken, str]:
    prefix = secrets.token_hex(4)
    secret = f"{SCIM_TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ScimToken.objects.create(
            organization=organization, name=name, prefix=prefix, digest=_digest(secret)
        )
        audit.record(
            actor=actor,
            organization=organization,
            action="scim.token_created",
            target=token,
            data={"name": name, "prefix": prefix},
        )
    return token, secret


def revoke_token(*, actor: Actor, token: ScimToken) -> None:
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        audit.record(
            actor=actor,
            organization=token.organization,
            action="scim.token_revoked",
            target=token,
            data={"prefix": token.prefix},
        )


def authenticate(header: str) -> ScimToken:
    """The live token of an ``Authorization: Bearer lps_…`` header; 401 otherwise."""
    scheme, _, credential = header.partition(" ")
    parts = credential.strip().split("_")
    if scheme.lower() != "bearer" or len(parts) < 3 or parts[0] != SCIM_TOKEN_PREFIX:
        raise ScimError(401, "A SCIM bearer token is required.")
    token = (
        ScimToken.objects.select_related("organization")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, _digest(credential.strip())):
        raise ScimError(401, "The SCIM token is invalid or revoked.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def actor_for(token: ScimToken) -> Actor:
    return Actor.system_actor(f"scim:{token.name} ({token.prefix})")


# --- filters -----------------------------------------------------------------------------

_FILTER = re.compile(r'^\s*([A-Za-z][\w.]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def parse_filter(expression: str, attributes: dict[str, str]) -> tuple[str, str]:
    """``attr eq "value"`` (RFC 7644 §3.4.2.2) for the attributes given (SCIM name → field);
    anything else is ``invalidFilter``."""
    match = _FILTER.match(expression)
    if not match:
        raise _invalid(
            f"Only 'attribute eq \"value\"' filters are supported: {expression!r}", "invalidFilter"
        )
    name, value = match.group(1).lower(), re.sub(r"\\(.)", r"\1", match.group(2))
    by_lower = {k.lower(): v for k, v in attributes.items()}
    if name not in by_lower:
        raise _invalid(f"Cannot filter on {match.group(1)!r}.", "invalidFilter")
    return by_lower[name], value


def page(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def page_bounds(start: str | None, count: str | None) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: 1-based startIndex (below 1 means 1), count capped, negative = 0."""
    try:
        first = max(int(start or 1), 1)
        size = min(max(int(count if count is not None else DEFAULT_COUNT), 0), MAX_COUNT)
    except ValueError:
        raise _invalid("startIndex and count are integers.") from None
    return first, size


# --- users -------------------------------------------------------------------------------

USER_FILTERS = {"userName": "user_name__iexact", "externalId": "external_id", "id": "id"}


def _meta(kind: str, obj: ScimUser | ScimGroup, base_url: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": obj.created_at.isoformat(),
        "lastModified": obj.updated_at.isoformat(),
        "location": f"{base_url}/{kind}s/{obj.pk}",
        "version": f'W/"{int(obj.updated_at.timestamp() * 1_000_000)}"',
    }


def user_resource(row: ScimUser, base_url: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": row.pk,
        "userName": row.user_name,
        "active": row.active,
        "emails": [{"value": row.user.email, "primary": True, "type": "work"}],
        "groups": [
            {"value": g.pk, "display": g.display_name, "$ref": f"{base_url}/Groups/{g.pk}"}
            for g in row.groups.all()
        ],
        "meta": _meta("User", row, base_url),
    }
    if row.external_id:
        resource["externalId"] = row.external_id
    if row.display_name:
        resource["displayName"] = row.display_name
    if row.given_name or row.family_name:
        resource["name"] = {
            k: v for k, v in (("givenName", row.given_name), ("familyName", row.family_name)) if v
        }
    return resource


def _require_schema(body: Any, schema: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object.", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schema not in schemas:
        raise _invalid(f"The body's schemas must include {schema}.", "invalidSyntax")
    return body


def _text(value: Any, attribute: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{attribute} must be a string.")
    if len(value) > limit:
        raise _invalid(f"{attribute} is longer than {limit} characters.")
    return value.strip()


def _boolean(value: Any, attribute: str) -> bool:
    # Some IdPs (Azure AD among them) send booleans in PATCH as the strings "True"/"False".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid(f"{attribute} must be a boolean.")


def _email_of(body: dict[str, Any]) -> str:
    """Lakeplane knows people by address: userName if it is one, else the primary email."""
    candidates = [_text(body.get("userName"), "userName", 254)]
    emails = body.get("emails") or []
    if isinstance(emails, list):
        primary = [e for e in emails if isinstance(e, dict) and e.get("primary")]
        for entry in primary + [e for e in emails if isinstance(e, dict)]:
            candidates.append(_text(entry.get("value"), "emails.value", 254))
    for candidate in candidates:
        try:
            validate_email(candidate)
        except ValidationError:
            continue
        return candidate.lower()
    raise _invalid("userName (or a primary email) must be an email address.")


_USER_ATTRIBUTES = {
    "username": ("user_name", 254),
    "externalid": ("external_id", 255),
    "displayname": ("display_name", 200),
    "name.givenname": ("given_name", 100),
    "name.familyname": ("family_name", 100),
}


def _set_user_attribute(row: ScimUser, path: str, value: Any) -> None:
    key = path.lower()
    if key == "active":
        row.active = _boolean(value, "active")
    elif key in _USER_ATTRIBUTES:
        field, limit = _USER_ATTRIBUTES[key]
        text = _text(value, path, limit)
        if field == "user_name" and not text:
            raise _invalid("userName cannot be empty.")
        setattr(row, field, text)
    elif key == "name":
        if not isinstance(value, dict):
            raise _invalid("name must be an object.")
        for sub, sub_value in value.items():
            if f"name.{sub.lower()}" in _USER_ATTRIBUTES:
                _set_user_attribute(row, f"name.{sub}", sub_value)
    elif key in ("emails", "schemas", "meta", "id", "groups") or key.startswith("emails["):
        # emails follow the Lakeplane account; groups change through /Groups (RFC 7643 §4.1.2
        # makes them read-only here); id and meta belong to the service provider.
        return
    elif key.startswith("urn:"):
        return  # extension schemas (enterprise user) are accepted and not kept
    else:
        raise _invalid(f"No attribute {path!r} on a User.", "invalidPath")


def resync(actor: Actor, row: ScimUser) -> str | None:
    """The membership a provisioned user should have now: none if inactive, else the role
    their SCIM groups map to."""
    membership = (
        Membership.objects.select_for_update()
        .filter(organization_id=row.organization_id, user_id=row.user_id)
        .first()
    )
    role = None
    if row.active:
        groups = list(row.groups.values_list("display_name", flat=True))
        role = role_for_groups(row.organization, groups).role
    return sync_membership(actor, row.organization, row.user, membership, role)


def _audit_user(actor: Actor, row: ScimUser, action: str, data: dict[str, Any]) -> None:
    audit.record(actor=actor, organization=row.organization, action=action, target=row, data=data)


def _user_state(row: ScimUser) -> dict[str, Any]:
    return {
        "userName": row.user_name,
        "externalId": row.external_id,
        "displayName": row.display_name,
        "active": row.active,
    }


def create_user(*, actor: Actor, organization: Organization, body: Any) -> ScimUser:
    body = _require_schema(body, USER_SCHEMA)
    email = _email_of(body)
    with transaction.atomic():
        user = tenancy.get_or_create_user(email)
        if ScimUser.objects.filter(organization=organization, user=user).exists():
            raise ScimError(409, f"{email} is already provisioned.", "uniqueness")
        row = ScimUser(organization=organization, user=user, user_name=email)
        for key, value in body.items():
            if key == "userName":
                row.user_name = _text(value, "userName", 254) or email
            else:
                _set_user_attribute(row, key, value)
        row.save()
        if not user.name and (row.display_name or row.given_name):
            user.name = (row.display_name or f"{row.given_name} {row.family_name}").strip()[:200]
            user.save(update_fields=["name"])
        role = resync(actor, row)
        _audit_user(actor, row, "scim.user_created", {"after": _user_state(row), "role": role})
    return row


def replace_user(*, actor: Actor, row: ScimUser, body: Any) -> ScimUser:
    """PUT (RFC 7644 §3.5.1): the attributes given replace the stored ones."""
    body = _require_schema(body, USER_SCHEMA)
    with transaction.atomic():
        before = _user_state(row)
        row.external_id = row.display_name = row.given_name = row.family_name = ""
        row.active = True
        for key, value in body.items():
            _set_user_attribute(row, key, value)
        row.save()
        role = resync(actor, row)
        _audit_user(
            actor,
            row,
            "scim.user_replaced",
            {"before": before, "after": _user_state(row), "role": role},
        )
    return row


def _operations(body: Any) -> list[dict[str, Any]]:
    body = _require_schema(body, PATCH_SCHEMA)
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise _invalid("Operations must be a non-empty list.", "invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict) or str(operation.get("op", "")).lower() not in (
            "add",
            "replace",
            "remove",
        ):
            raise _invalid("Each operation needs op add, replace or remove.", "invalidSyntax")
    return operations


def patch_user(*, actor: Actor, row: ScimUser, body: Any) -> ScimUser:
    operations = _operations(body)
    with transaction.atomic():
        before = _user_state(row)
        for operation in operations:
            op = str(operation["op"]).lower()
            path = operation.get("path")
            value = operation.get("value")
            if path is None:
                if op == "remove" or not isinstance(value, dict):
                    raise _invalid("Without a path, the value must be an object.", "noTarget")
                for key, sub_value in value.items():
                    _set_user_attribute(row, key, sub_value)
            elif not isinstance(path, str):
                raise _invalid("path must be a string.", "invalidPath")
            elif op == "remove":
                if path.lower() in ("username", "active"):
                    raise _invalid(f"{path} cannot be removed.", "mutability")
                _set_user_attribute(row, path, "")
            else:
                _set_user_attribute(row, path, value)
        row.save()
        role = resync(actor, row)
        after = _user_state(row)
        action = (
            "scim.user_deactivated"
            if before["active"] and not after["active"]
            else "scim.user_updated"
        )
        _audit_user(actor, row, action, {"before": before, "after": after, "role": role})
    return row


def delete_user(*, actor: Actor, row: ScimUser) -> None:
    with transaction.atomic():
        state = _user_state(row)
        row.active = False
        resync(actor, row)
        _audit_user(actor, row, "scim.user_deleted", {"before": state})
        row.delete()


# --- groups ------------------------------------------------------------------------------

GROUP_FILTERS = {"displayName": "display_name", "externalId": "external_id", "id": "id"}


def group_resource(row: ScimGroup, base_url: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": row.pk,
        "displayName": row.display_name,
        "members": [
            {"value": u.pk, "display": u.user_name, "$ref": f"{base_url}/Users/{u.pk}"}
            for u in row.members.all()
        ],
        "meta": _meta("Group", row, base_url),
    }
    if row.external_id:
        resource["externalId"] = row.external_id
    return resource


def _members(organization: Organization, value: Any) -> list[ScimUser]:
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("value"), str) for m in value
    ):
        raise _invalid("members must be a list of {value: <user id>}.")
    ids = {m["value"] for m in value}
    found = list(ScimUser.objects.filter(organization=organization, pk__in=ids))
    missing = ids - {u.pk for u in found}
    if missing:
        raise _invalid(f"No such user(s): {', '.join(sorted(missing))}.")
    return found


_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$', re.IGNORECASE)


def _apply_group_change(row: ScimGroup, op: str, path: str | None, value: Any) -> set[str]:
    """Apply one operation; returns the ids of users whose groups changed."""
    organization = row.organization
    current = {u.pk for u in row.members.all()}
    if path is None:
        if op == "remove" or not isinstance(value, dict):
            raise _invalid("Without a path, the value must be an object.", "noTarget")
        changed: set[str] = set()
        for key, sub_value in value.items():
            changed |= _apply_group_change(row, op, key, sub_value)
        return changed
    key = path.lower()
    member_match = _MEMBER_FILTER.match(path)
    if key == "displayname":
        if op == "remove":
            raise _invalid("displayName cannot be removed.", "mutability")
        name = _text(value, "displayName", 255)
        if not name:
            raise _invalid("displayName cannot be empty.")
        if (
            ScimGroup.objects.filter(organization=organization, display_name=name)
            .exclude(pk=row.pk)
            .exists()
        ):
            raise ScimError(409, f"A group {name!r} exists.", "uniqueness")
        row.display_name = name
        return current  # the mapping is by name: every member's role may change
    if key == "externalid":
        row.external_id = "" if op == "remove" else _text(value, "externalId", 255)
        return set()
    if member_match:
        if op != "remove":
            raise _invalid("A member filter path is for remove.", "invalidPath")
        gone = ScimUser.objects.filter(organization=organization, pk=member_match.group(1))
        row.members.remove(*gone)
        return {u.pk for u in gone}
    if key == "members":
        if op == "remove" and value is None:
            row.members.clear()
            return current
        users = _members(organization, value)
        if op == "add":
            row.members.add(*users)
        elif op == "remove":
            row.members.remove(*users)
        else:
            row.members.set(users)
        return current ^ {u.pk for u in row.members.all()} | {u.pk for u in users}
    if key in ("schemas", "meta", "id"):
        return set()
    raise _invalid(f"No attribute {path!r} on a Group.", "invalidPath")


def _resync_users(actor: Actor, organization: Organization, ids: set[str]) -> None:
    for user in ScimUser.objects.filter(organization=organization, pk__in=ids).select_related(
        "user", "organization"
    ):
        resync(actor, user)


def create_group(*, actor: Actor, organization: Organization, body: Any) -> ScimGroup:
    body = _require_schema(body, GROUP_SCHEMA)
    name = _text(body.get("displayName"), "displayName", 255)
    if not name:
        raise _invalid("displayName is required.")
    with transaction.atomic():
        if ScimGroup.objects.filter(organization=organization, display_name=name).exists():
            raise ScimError(409, f"A group {name!r} exists.", "uniqueness")
        row = ScimGroup.objects.create(
            organization=organization,
            display_name=name,
            external_id=_text(body.get("externalId"), "externalId", 255),
        )
        users = _members(organization, body.get("members") or [])
        row.members.set(users)
        _resync_users(actor, organization, {u.pk for u in users})
        audit.record(
            actor=actor,
            organization=organization,
            action="scim.group_created",
            target=row,
            data={"displayName": name, "members": sorted(u.pk for u in users)},
        )
    return row


def patch_group(*, actor: Actor, row: ScimGroup, body: Any) -> ScimGroup:
    operations = _operations(body)
    with transaction.atomic():
        before = {
            "displayName": row.display_name,
            "members": sorted(u.pk for u in row.members.all()),
        }
        changed: set[str] = set()
        for operation in operations:
            path = operation.get("path")
            if path is not None and not isinstance(path, str):
                raise _invalid("path must be a string.", "invalidPath")
            changed |= _apply_group_change(
                row, str(operation["op"]).lower(), path, operation.get("value")
            )
        row.save()
        _resync_users(actor, row.organization, changed)
        after = {
            "displayName": row.display_name,
            "members": sorted(u.pk for u in row.members.all()),
        }
        audit.record(
            actor=actor,
            organization=row.organization,
            action="scim.group_updated",
            target=row,
            data={"before": before, "after": after},
        )
    return row


def delete_group(*, actor: Actor, row: ScimGroup) -> None:
    with transaction.atomic():
        members = {u.pk for u in row.members.all()}
        audit.record(
            actor=actor,
            organization=row.organization,
            action="scim.group_deleted",
            target=row,
            data={"displayName": row.display_name, "members": sorted(members)},
        )
        organization = row.organization
        row.delete()
        _resync_users(actor, organization, members)
