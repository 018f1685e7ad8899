"""Users, organizations, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from controlplane.core.ids import PrefixedIdField
from controlplane.core.roles import Role, role_rank

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    id = PrefixedIdField("usr")
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


class Organization(models.Model):
    id = PrefixedIdField("org")
    slug = models.CharField(max_length=50, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Off by default: every API token expires (at most MAX_TOKEN_DAYS). Only an owner turns it
    # on, and the change is audited (tenancy.services.update_organization).
    allow_non_expiring_tokens = models.BooleanField(default=False)
    # Single sign-on policy (controlplane/sso): when on, a console session reaches this
    # organization only if it was signed in through the organization's own provider; the
    # break-glass owner may still use a password, so a broken IdP cannot lock the org out.
    require_sso = models.BooleanField(default=False)
    sso_break_glass_owner = models.ForeignKey(
        "User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    id = PrefixedIdField("mem")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organization_id}:{self.role}"


# The session key listing the organizations (ids) this session signed in to through their SSO.
SSO_SESSION_KEY = "lakeplane_sso_orgs"

TOKEN_PREFIX = "lpt"  # noqa: S105 - the public scheme marker of our tokens, not a secret


class ApiToken(models.Model):
    """A credential for automation, scoped to one organization with one role.

    The secret is shown once at creation. Only a SHA-256 digest is stored: the secret is 256
    random bits, so a fast hash is safe and keeps per-request authentication cheap.
    """

    id = PrefixedIdField("tok")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tokens")
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # The creator's current role in the organization, read with the token by authentication
    # (None: no longer a member, and the token is refused). Not stored.
    owner_role: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def effective_role(self) -> Role:
        """What the token may do: its role, capped by its creator's current role."""
        if self.owner_role is None:
            raise ValueError("the owner's role is read by authentication")
        return min(Role(self.role), Role(self.owner_role), key=role_rank)

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return (visible prefix, full token)."""
        prefix = secrets.token_hex(4)
        return prefix, f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
