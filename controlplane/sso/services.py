"""The write path for organizations' single sign-on: provider, domains, group mappings, policy.

Each function runs in one transaction, takes the acting ``actor`` and writes an audit row with
what changed (the client secret never: only that it changed).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput
from controlplane.core.roles import Role
from controlplane.sso import crypto, dns
from controlplane.sso.models import SsoConnection, SsoDomain, SsoGroupMapping
from controlplane.tenancy import services as tenancy
from controlplane.tenancy.models import Membership, Organization, User
from controlplane.tenancy.oidc import DiscoveryError, discover

# A DNS name: labels of letters, digits and hyphens, at least two labels, a non-numeric TLD.
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z][a-z0-9-]{0,62}$")

# The connection fields the audit log shows before/after (never the secret).
_AUDITED = (
    "issuer",
    "client_id",
    "token_endpoint_auth_method",
    "scopes",
    "group_claim",
    "default_role",
)


def _check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and settings.LAKEPLANE_SSO_ALLOW_LOOPBACK_HTTP:
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            if parts.hostname == "localhost":
                return
    raise InvalidInput(
        "The issuer must be an https URL.",
        errors={"issuer": ["Use the provider's https issuer URL, e.g. https://idp.example.com."]},
    )


def _discover_into(connection: SsoConnection, issuer: str) -> None:
    """Fill the endpoints from the issuer's discovery document; a bad one is a field error."""
    _check_issuer(issuer)
    try:
        found = discover(issuer, timeout=settings.OIDC_TIMEOUT)
    except DiscoveryError as exc:
        raise InvalidInput(
            "The issuer's discovery document could not be used.", errors={"issuer": [str(exc)]}
        ) from None
    connection.issuer = found["OIDC_OP_ISSUER"]
    connection.authorization_endpoint = found["OIDC_OP_AUTHORIZATION_ENDPOINT"]
    connection.token_endpoint = found["OIDC_OP_TOKEN_ENDPOINT"]
    connection.userinfo_endpoint = found["OIDC_OP_USER_ENDPOINT"]
    connection.jwks_uri = found["OIDC_OP_JWKS_ENDPOINT"]
    connection.discovered_at = timezone.now()


def _snapshot(connection: SsoConnection | None) -> dict[str, Any]:
    if connection is None:
        return {}
    return {name: getattr(connection, name) for name in _AUDITED}


def save_connection(
    *, actor: Actor, organization: Organization, changes: dict[str, Any]
) -> tuple[SsoConnection, bool]:
    """Create the organization's provider connection or change it; returns (connection, created).

    A new or changed issuer is discovered again; ``client_secret`` (required on create) is
    encrypted before it is stored.
    """
    with transaction.atomic():
        connection = (
            SsoConnection.objects.select_for_update().filter(organization=organization).first()
        )
        created = connection is None
        before = _snapshot(connection)
        if connection is None:
            missing = [f for f in ("issuer", "client_id", "client_secret") if not changes.get(f)]
            if missing:
                raise InvalidInput(
                    "A new connection needs its issuer, client id and client secret.",
                    errors={f: ["This field is required."] for f in missing},
                )
            connection = SsoConnection(organization=organization)
        issuer = changes.get("issuer")
        if issuer is not None and (created or issuer.rstrip("/") != connection.issuer.rstrip("/")):
            _discover_into(connection, issuer)
        secret_changed = "client_secret" in changes
        if secret_changed:
            connection.client_secret_encrypted = crypto.encrypt(changes["client_secret"])
        for name in _AUDITED[1:]:
            if name in changes:
                setattr(connection, name, changes[name])
        connection.save()
        after = _snapshot(connection)
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.connection_created" if created else "sso.connection_updated",
            target=connection,
            data={
                "before": before,
                "after": after,
                "client_secret_changed": secret_changed,
            },
        )
    return connection, created


def delete_connection(*, actor: Actor, connection: SsoConnection) -> None:
    organization = connection.organization
    with transaction.atomic():
        if organization.require_sso:
            raise Conflict("Turn off require_sso before removing the provider it requires.")
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.connection_deleted",
            target=connection,
            data={"before": _snapshot(connection)},
        )
        connection.delete()


def update_policy(
    *,
    actor: Actor,
    organization: Organization,
    require_sso: bool | None = None,
    break_glass_owner: User | str | None = "",
) -> Organization:
    """Require SSO (or not) and name the break-glass owner (``""``: leave it as it is)."""
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        before = {"require_sso": org.require_sso, "break_glass_owner": org.sso_break_glass_owner_id}
        if not isinstance(break_glass_owner, str):
            if (
                break_glass_owner is not None
                and not Membership.objects.filter(
                    organization=org, user=break_glass_owner, role=Role.OWNER
                ).exists()
            ):
                raise InvalidInput(
                    "The break-glass account must be an owner of the organization.",
                    errors={"break_glass_owner": ["Not an owner of this organization."]},
                )
            org.sso_break_glass_owner = break_glass_owner
        if require_sso is not None:
            org.require_sso = require_sso
        if org.require_sso:
            errors: dict[str, list[str]] = {}
            if org.sso_break_glass_owner_id is None:
                errors["break_glass_owner"] = [
                    "Name an owner who may still sign in with a password when SSO is required."
                ]
            if not SsoConnection.objects.filter(organization=org).exists():
                errors["require_sso"] = ["Configure the organization's provider first."]
            elif not SsoDomain.objects.filter(organization=org, verified_at__isnull=False).exists():
                errors["require_sso"] = ["Verify at least one email domain first."]
            if errors:
                raise InvalidInput("Single sign-on cannot be required yet.", errors=errors)
        org.save(update_fields=["require_sso", "sso_break_glass_owner"])
        after = {"require_sso": org.require_sso, "break_glass_owner": org.sso_break_glass_owner_id}
        if after != before:
            audit.record(
                actor=actor,
                organization=org,
                action="sso.policy_changed",
                target=org,
                data={"before": before, "after": after},
            )
    organization.require_sso = org.require_sso
    organization.sso_break_glass_owner = org.sso_break_glass_owner
    return org


def normalize_domain(value: str) -> str:
    domain = value.strip().rstrip(".").lower()
    with contextlib.suppress(UnicodeError):  # not IDNA-encodable: the pattern refuses it
        domain = domain.encode("idna").decode("ascii")
    if not _DOMAIN.match(domain):
        raise InvalidInput(
            "Not a domain name.", errors={"domain": [f"{value!r} is not a DNS domain name."]}
        )
    return domain


def add_domain(*, actor: Actor, organization: Organization, domain: str) -> SsoDomain:
    name = normalize_domain(domain)
    with transaction.atomic():
        if SsoDomain.objects.filter(domain=name, verified_at__isnull=False).exists():
            # Said the same way whether it is this organization or another: 409, no details.
            raise Conflict(f"{name} is already verified by an organization.")
        try:
            with transaction.atomic():
                row = SsoDomain.objects.create(
                    organization=organization,
                    domain=name,
                    verification_token=secrets.token_urlsafe(24),
                )
        except IntegrityError:
            raise Conflict(f"{name} is already claimed by this organization.") from None
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.domain_added",
            target=row,
            data={"domain": name},
        )
    return row


def verify_domain(*, actor: Actor, domain: SsoDomain) -> SsoDomain:
    """Look for the TXT record; found, the domain is verified (422 with the expected record
    otherwise, 409 if another organization verified it first)."""
    if domain.verified_at is not None:
        return domain
    try:
        values = dns.txt_records(domain.record_name)
    except dns.LookupFailed as exc:
        raise InvalidInput(
            "The DNS lookup failed; try again.",
            errors={"domain": [f"Looking up TXT {domain.record_name} failed: {exc}"]},
        ) from None
    if domain.record_value not in {v.strip() for v in values}:
        raise InvalidInput(
            "The verification record was not found.",
            errors={
                "domain": [
                    f'Publish TXT {domain.record_name} "{domain.record_value}" and verify again '
                    f"(found {len(values)} other TXT value(s))."
                ]
            },
        )
    with transaction.atomic():
        row = SsoDomain.objects.select_for_update().get(pk=domain.pk)
        if row.verified_at is None:
            row.verified_at = timezone.now()
            try:
                with transaction.atomic():
                    row.save(update_fields=["verified_at"])
            except IntegrityError:
                raise Conflict(f"{row.domain} is already verified by an organization.") from None
            audit.record(
                actor=actor,
                organization=row.organization,
                action="sso.domain_verified",
                target=row,
                data={"domain": row.domain},
            )
    return row


def remove_domain(*, actor: Actor, domain: SsoDomain) -> None:
    organization = domain.organization
    with transaction.atomic():
        if (
            organization.require_sso
            and domain.verified_at is not None
            and not SsoDomain.objects.filter(organization=organization, verified_at__isnull=False)
            .exclude(pk=domain.pk)
            .exists()
        ):
            raise Conflict("SSO is required: keep one verified domain, or turn require_sso off.")
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.domain_removed",
            target=domain,
            data={"domain": domain.domain},
        )
        domain.delete()


def add_group_mapping(
    *, actor: Actor, organization: Organization, group: str, role: Role
) -> SsoGroupMapping:
    with transaction.atomic():
        try:
            with transaction.atomic():
                mapping = SsoGroupMapping.objects.create(
                    organization=organization, group=group, role=role
                )
        except IntegrityError:
            raise Conflict(f"The group {group!r} is already mapped.") from None
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.group_mapped",
            target=mapping,
            data={"group": group, "role": role},
        )
    return mapping


def change_group_mapping(*, actor: Actor, mapping: SsoGroupMapping, role: Role) -> SsoGroupMapping:
    with transaction.atomic():
        before = mapping.role
        mapping.role = role
        mapping.save(update_fields=["role"])
        audit.record(
            actor=actor,
            organization=mapping.organization,
            action="sso.group_mapping_changed",
            target=mapping,
            data={"group": mapping.group, "before": before, "after": role},
        )
    return mapping


def remove_group_mapping(*, actor: Actor, mapping: SsoGroupMapping) -> None:
    with transaction.atomic():
        audit.record(
            actor=actor,
            organization=mapping.organization,
            action="sso.group_unmapped",
            target=mapping,
            data={"group": mapping.group, "role": mapping.role},
        )
        mapping.delete()


@dataclass(frozen=True)
class MappedRole:
    role: Role | None  # None: no access
    groups: list[str]  # the user's groups that are mapped


def role_for_groups(organization: Organization, groups: list[str]) -> MappedRole:
    """The highest role any of ``groups`` maps to, else the connection's default role."""
    from controlplane.core.roles import role_rank

    mappings = list(SsoGroupMapping.objects.filter(organization=organization, group__in=groups))
    if mappings:
        best = max(mappings, key=lambda m: role_rank(m.role))
        return MappedRole(role=Role(best.role), groups=sorted(m.group for m in mappings))
    default = (
        SsoConnection.objects.filter(organization=organization)
        .values_list("default_role", flat=True)
        .first()
    )
    return MappedRole(role=Role(default) if default else None, groups=[])


def configure(
    *,
    actor: Actor,
    organization: Organization,
    changes: dict[str, Any],
    policy: dict[str, Any],
) -> SsoConnection:
    """One API write: the provider settings and the policy, both or neither."""
    with transaction.atomic():
        connection = SsoConnection.objects.filter(organization=organization).first()
        if changes or connection is None:
            connection, _ = save_connection(actor=actor, organization=organization, changes=changes)
        if policy:
            owner: User | str | None = ""
            if "break_glass_owner" in policy:
                user_id = policy["break_glass_owner"]
                owner = User.objects.filter(pk=user_id).first() if user_id else None
                if user_id and owner is None:
                    raise InvalidInput(
                        "No such user.",
                        errors={"break_glass_owner": ["Not an owner of this organization."]},
                    )
            update_policy(
                actor=actor,
                organization=organization,
                require_sso=policy.get("require_sso"),
                break_glass_owner=owner,
            )
    return connection


def sync_membership(
    actor: Actor,
    organization: Organization,
    user: User,
    membership: Membership | None,
    role: Role | None,
) -> str | None:
    """Make ``user``'s membership say ``role`` (None: not a member); returns the role they
    end with. Demotion caps their tokens and removal revokes them (tenancy.services). The
    break-glass owner is left as they are, and the last owner is kept."""
    if (
        membership is not None
        and membership.role == Role.OWNER
        and user.pk == organization.sso_break_glass_owner_id
    ):
        return membership.role
    if role is None:
        if membership is not None:
            try:
                tenancy.remove_member(actor=actor, membership=membership, acting_role=Role.OWNER)
            except Conflict:
                return membership.role  # the last owner stays
        return None
    if membership is None:
        tenancy.add_member(
            actor=actor,
            organization=organization,
            email=user.email,
            role=role,
            acting_role=Role.OWNER,
        )
        return role
    if membership.role != role:
        try:
            tenancy.change_member_role(
                actor=actor, membership=membership, role=role, acting_role=Role.OWNER
            )
        except Conflict:
            return membership.role
    return role
