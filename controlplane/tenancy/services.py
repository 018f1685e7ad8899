"""The write path for organizations, members and API tokens.

Each function runs in one transaction, takes the acting ``actor`` as a keyword and writes an
audit row. Rules that the API layer cannot see (the last owner, role ceilings) live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput, blocking_resources
from controlplane.core.roles import Role, role_at_least, role_rank
from controlplane.tenancy.models import ApiToken, Membership, Organization, User

MAX_TOKEN_DAYS = 90


def create_organization(*, actor: Actor, owner: User, name: str, slug: str) -> Organization:
    with transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            raise InvalidInput(
                "That slug is taken.", errors={"slug": [f"An organization '{slug}' exists."]}
            )
        try:
            with transaction.atomic():
                org = Organization.objects.create(name=name, slug=slug)
        except IntegrityError:  # a concurrent create won the race
            raise InvalidInput(
                "That slug is taken.", errors={"slug": [f"An organization '{slug}' exists."]}
            ) from None
        Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
        audit.record(actor=actor, organization=org, action="organization.created", target=org)
    return org


def update_organization(
    *,
    actor: Actor,
    organization: Organization,
    acting_role: Role,
    name: str | None = None,
    allow_non_expiring_tokens: bool | None = None,
) -> Organization:
    if allow_non_expiring_tokens is not None and acting_role != Role.OWNER:
        raise InvalidInput(
            "Only an owner can change whether tokens may never expire.",
            errors={"allow_non_expiring_tokens": ["Only owners change the token policy."]},
        )
    with transaction.atomic():
        if name is not None:
            organization.name = name
            organization.save(update_fields=["name"])
            audit.record(
                actor=actor,
                organization=organization,
                action="organization.updated",
                target=organization,
                data={"name": name},
            )
        if (
            allow_non_expiring_tokens is not None
            and allow_non_expiring_tokens != organization.allow_non_expiring_tokens
        ):
            organization.allow_non_expiring_tokens = allow_non_expiring_tokens
            organization.save(update_fields=["allow_non_expiring_tokens"])
            audit.record(
                actor=actor,
                organization=organization,
                action="organization.token_policy_changed",
                target=organization,
                data={"allow_non_expiring_tokens": allow_non_expiring_tokens},
            )
    return organization


def delete_organization(*, actor: Actor, organization: Organization) -> None:
    """Remove an organization that owns no live cloud resources.

    Live compute planes, clusters, caches and metastores protect it (they own AWS resources that
    only their own delete operations tear down): the answer is a 409 listing them, by kind.
    Soft-deleted ones are history whose AWS side is gone; they go with the organization.
    """
    with transaction.atomic():
        _delete_past(organization, depth=0)


def _delete_past(obj: models.Model, *, depth: int) -> None:
    """Delete ``obj``, first removing soft-deleted rows that protect it; live ones are a 409."""
    while True:
        try:
            obj.delete()
            return
        except ProtectedError as error:
            protected = list(error.protected_objects)
        live = [o for o in protected if getattr(o, "deleted_at", None) is None]
        if live:
            raise Conflict(
                "Delete these resources first: the organization still owns them.",
                errors=blocking_resources(live),
            ) from None
        if depth > 10:  # a protection cycle among soft-deleted rows: a bug, not the caller's
            raise
        for row in protected:
            _delete_past(row, depth=depth + 1)


def get_or_create_user(email: str) -> User:
    email = email.strip().lower()
    # Addresses are case-insensitive in practice; a user stored in mixed case is the same person.
    user = User.objects.filter(email__iexact=email).first()
    return user or User.objects.create_user(email=email)


def add_member(
    *, actor: Actor, organization: Organization, email: str, role: Role, acting_role: Role
) -> Membership:
    if role == Role.OWNER and acting_role != Role.OWNER:
        raise InvalidInput(
            "Only an owner can add another owner.", errors={"role": ["Only owners grant owner."]}
        )
    with transaction.atomic():
        user = get_or_create_user(email)
        if Membership.objects.filter(organization=organization, user=user).exists():
            raise Conflict(f"{user.email} is already a member of {organization.slug}.")
        membership = Membership.objects.create(organization=organization, user=user, role=role)
        audit.record(
            actor=actor,
            organization=organization,
            action="member.added",
            target=user,
            data={"email": user.email, "role": role},
        )
    return membership


def _owners_left_after(membership: Membership) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .count()
    )


@dataclass(frozen=True)
class CappedToken:
    """A token of a demoted member, lowered to their new role."""

    token: ApiToken
    was: str


def change_member_role(
    *, actor: Actor, membership: Membership, role: Role, acting_role: Role
) -> list[CappedToken]:
    """Give a member a new role; their live tokens above it are capped to it (returned).

    Authentication caps a token by its creator's current role on every request anyway; this
    makes the stored role say so too, so the token list shows what each token can do."""
    if Role.OWNER in (role, membership.role) and acting_role != Role.OWNER:
        raise InvalidInput(
            "Only an owner can grant or take away the owner role.",
            errors={"role": ["Only owners change owners."]},
        )
    with transaction.atomic():
        if (
            membership.role == Role.OWNER
            and role != Role.OWNER
            and not _owners_left_after(membership)
        ):
            raise Conflict("An organization needs an owner; make someone else owner first.")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        above = [
            token
            for token in ApiToken.objects.select_for_update().filter(
                organization_id=membership.organization_id,
                created_by_id=membership.user_id,
                revoked_at__isnull=True,
            )
            if role_rank(token.role) > role_rank(role)
        ]
        capped = [CappedToken(token=token, was=token.role) for token in above]
        for token in above:
            token.role = role
        ApiToken.objects.bulk_update(above, ["role"])
        audit.record(
            actor=actor,
            organization=membership.organization,
            action="member.role_changed",
            target=membership.user,
            data={"from": old, "to": role, "tokens_capped": [c.token.pk for c in capped]},
        )
    return sorted(capped, key=lambda c: c.token.pk)


def remove_member(*, actor: Actor, membership: Membership, acting_role: Role) -> None:
    if membership.role == Role.OWNER and acting_role != Role.OWNER:
        raise InvalidInput(
            "Only an owner can remove an owner.", errors={"role": ["Only owners remove owners."]}
        )
    with transaction.atomic():
        if membership.role == Role.OWNER and not _owners_left_after(membership):
            raise Conflict("The last owner cannot be removed; make someone else owner first.")
        # A person who leaves takes their automation with them.
        ApiToken.objects.filter(
            organization_id=membership.organization_id,
            created_by_id=membership.user_id,
            revoked_at__isnull=True,
        ).update(revoked_at=timezone.now())
        audit.record(
            actor=actor,
            organization=membership.organization,
            action="member.removed",
            target=membership.user,
            data={"email": membership.user.email},
        )
        membership.delete()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    *,
    actor: Actor,
    organization: Organization,
    created_by: User,
    name: str,
    role: Role,
    acting_role: Role,
    expires_in_days: int | None,
    acting_token: ApiToken | None = None,
) -> IssuedToken:
    """A new token: at most ``acting_role`` and MAX_TOKEN_DAYS; never-expiring (``None``) only
    where an owner allowed it; minted by a token (``acting_token``), it lives no longer than
    that token."""
    if not role_at_least(acting_role, role):
        raise InvalidInput(
            "A token cannot have more power than its creator.",
            errors={"role": [f"You are {acting_role.value}; a token can be at most that."]},
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(
            "Bad expiry.", errors={"expires_in_days": [f"Use 1 to {MAX_TOKEN_DAYS} days."]}
        )
    if expires_in_days is None and not organization.allow_non_expiring_tokens:
        raise InvalidInput(
            "Tokens of this organization expire.",
            errors={
                "expires_in_days": [
                    f"Use 1 to {MAX_TOKEN_DAYS} days; an owner can allow non-expiring tokens."
                ]
            },
        )
    now = timezone.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    limit = acting_token.expires_at if acting_token is not None else None
    if limit is not None and (expires_at is None or expires_at > limit):
        days_left = max((limit - now).days, 0)
        raise InvalidInput(
            "A token cannot outlive the token that creates it.",
            errors={
                "expires_in_days": [
                    f"This token expires in {days_left} days; a token it creates can "
                    "live at most that long."
                ]
            },
        )
    prefix, secret = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=organization,
            created_by=created_by,
            name=name,
            role=role,
            prefix=prefix,
            digest=ApiToken.digest_of(secret),
            expires_at=expires_at,
        )
        audit.record(
            actor=actor,
            organization=organization,
            action="token.created",
            target=token,
            data={"name": name, "role": role, "prefix": prefix},
        )
    return IssuedToken(token=token, secret=secret)


def revoke_token(*, actor: Actor, token: ApiToken) -> None:
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        audit.record(
            actor=actor,
            organization=token.organization,
            action="token.revoked",
            target=token,
            data={"prefix": token.prefix},
        )


def bootstrap(
    *,
    org_slug: str,
    email: str,
    org_name: str | None = None,
    token_name: str | None = None,
    expires_in_days: int | None = MAX_TOKEN_DAYS,
) -> tuple[Organization, User, IssuedToken]:
    """First user of an installation; idempotent (a re-run issues a fresh token).

    With ``token_name`` the token is rotated: the owner's earlier live tokens of that name are
    revoked, so a repeated bootstrap (each ``make run``) leaves exactly one valid token.
    """
    actor = Actor.system_actor("bootstrap")
    with transaction.atomic():
        user = get_or_create_user(email)
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            org = create_organization(
                actor=actor, owner=user, name=org_name or org_slug, slug=org_slug
            )
        membership, _ = Membership.objects.get_or_create(
            organization=org, user=user, defaults={"role": Role.OWNER}
        )
        if membership.role != Role.OWNER:
            membership.role = Role.OWNER
            membership.save(update_fields=["role"])
        if token_name is not None:
            earlier = ApiToken.objects.filter(
                organization=org, created_by=user, name=token_name, revoked_at__isnull=True
            )
            for token in earlier:
                revoke_token(actor=actor, token=token)
        issued = create_token(
            actor=actor,
            organization=org,
            created_by=user,
            name=token_name or f"bootstrap {timezone.now():%Y-%m-%d %H:%M}",
            role=Role.OWNER,
            acting_role=Role.OWNER,
            expires_in_days=expires_in_days,
        )
    return org, user, issued
