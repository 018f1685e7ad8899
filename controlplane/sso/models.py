"""Per-organization single sign-on: the org's OpenID provider, its verified domains, and how
the provider's groups become Lakeplane roles.

Whether an organization *requires* SSO, and who its break-glass owner is, live on
``tenancy.Organization`` (``require_sso``, ``sso_break_glass_owner``): every org-scoped request
reads the organization anyway, so enforcing the policy costs no query.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from controlplane.core.ids import PrefixedIdField
from controlplane.core.roles import Role
from controlplane.tenancy.models import Organization


class TokenAuthMethod(models.TextChoices):
    # How Lakeplane authenticates at the provider's token endpoint (OpenID Connect Core §9).
    CLIENT_SECRET_BASIC = "client_secret_basic", "HTTP Basic"
    CLIENT_SECRET_POST = "client_secret_post", "Form body"


class SsoConnection(models.Model):
    """One organization's OpenID provider (authorization code flow with PKCE).

    The endpoints come from the issuer's discovery document, read when the connection is saved;
    the client secret is stored only encrypted (``sso.crypto``) and never returned.
    """

    id = PrefixedIdField("sso")
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="sso_connection"
    )
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField()
    token_endpoint_auth_method = models.CharField(
        max_length=32, choices=TokenAuthMethod.choices, default=TokenAuthMethod.CLIENT_SECRET_BASIC
    )
    scopes = models.CharField(max_length=300, default="openid email profile groups")
    group_claim = models.CharField(max_length=100, default="groups")
    # The role of a user in none of the mapped groups; empty: such a user has no access.
    default_role = models.CharField(max_length=10, choices=Role.choices, blank=True, default="")
    authorization_endpoint = models.URLField(max_length=500)
    token_endpoint = models.URLField(max_length=500)
    userinfo_endpoint = models.URLField(max_length=500)
    jwks_uri = models.URLField(max_length=500)
    discovered_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.issuer}"


class SsoDomain(models.Model):
    """An email domain an organization claims; once verified, its addresses sign in there.

    Verification is a DNS TXT record ``_lakeplane-verification.<domain>`` holding
    ``lakeplane-verification=<token>``. A domain is verified by at most one organization.
    """

    id = PrefixedIdField("dom")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="sso_domains"
    )
    domain = models.CharField(max_length=253)
    verification_token = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="uniq_sso_domain_org"),
            models.UniqueConstraint(
                fields=["domain"],
                condition=Q(verified_at__isnull=False),
                name="uniq_verified_domain",
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def record_name(self) -> str:
        return f"_lakeplane-verification.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"lakeplane-verification={self.verification_token}"


class SsoGroupMapping(models.Model):
    """Members of ``group`` (a value of the provider's group claim) get ``role``; a user in
    several mapped groups gets the highest of their roles."""

    id = PrefixedIdField("gmap")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="sso_group_mappings"
    )
    group = models.CharField(max_length=255)
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "group"], name="uniq_sso_group")
        ]

    def __str__(self) -> str:
        return f"{self.group} → {self.role}"


SCIM_TOKEN_PREFIX = "lps"  # noqa: S105 - the public scheme marker of SCIM tokens, not a secret


class ScimToken(models.Model):
    """The bearer credential an organization's provisioning client (the IdP) uses at
    ``/scim/v2``. Shown once; only its SHA-256 digest is stored (256 random bits)."""

    id = PrefixedIdField("scim")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class ScimUser(models.Model):
    """A person the organization's IdP provisioned (RFC 7643 §4.1). The Lakeplane ``User`` is
    shared across organizations; this row is the organization's view of them: whether they
    are active here and what the IdP calls them. Their membership follows from it."""

    id = PrefixedIdField("scimu")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_users"
    )
    user = models.ForeignKey("tenancy.User", on_delete=models.CASCADE, related_name="+")
    user_name = models.CharField(max_length=254)
    external_id = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_scim_user"),
        ]

    def __str__(self) -> str:
        return self.user_name


class ScimGroup(models.Model):
    """A group the IdP pushes (RFC 7643 §4.2); its display name is what the group-role mapping
    matches, the same as the sign-in's group claim."""

    id = PrefixedIdField("scimg")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_groups"
    )
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(ScimUser, related_name="groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "display_name"], name="uniq_scim_group_name"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name
