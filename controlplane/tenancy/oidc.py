"""OpenID Connect login (mozilla-django-oidc): users are matched or created by verified email.

mozilla-django-oidc checks the ID token's signature, expiry and nonce. It does not check the
token's audience or issuer, nor that the userinfo answer is about the same subject as the ID
token (OpenID Connect Core §3.1.3.7 and §5.3.2); this backend adds those checks.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from controlplane.tenancy.models import User

logger = logging.getLogger(__name__)

# The provider settings a discovery document fills in, by the metadata field that holds each.
DISCOVERED_SETTINGS = {
    "OIDC_OP_ISSUER": "issuer",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class DiscoveryError(Exception):
    """The issuer's discovery document is missing, malformed or names another issuer."""


def discover(issuer: str, timeout: float = 10.0) -> dict[str, str]:
    """Read ``{issuer}/.well-known/openid-configuration`` and return the OIDC_OP_* settings.

    Done on demand (``manage.py oidc_discover``), never while settings load: a start-up that
    depends on the IdP answering would take the whole control plane down with it.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"could not read {url}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise DiscoveryError(f"{url} is not a JSON object")
    # §4.3 of OpenID Connect Discovery: the document must name the issuer it was fetched for.
    if metadata.get("issuer") not in {issuer, issuer.rstrip("/")}:
        raise DiscoveryError(f"{url} names issuer {metadata.get('issuer')!r}, not {issuer!r}")
    found: dict[str, str] = {}
    for setting, field in DISCOVERED_SETTINGS.items():
        value = metadata.get(field)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"{url} has no {field}")
        found[setting] = value
    methods = metadata.get("code_challenge_methods_supported") or []
    if "S256" not in methods:
        # Not fatal: many IdPs accept PKCE without advertising it.
        logger.warning("%s does not advertise PKCE S256 support", issuer)
    return found


def email_is_verified(claims: dict[str, Any]) -> bool:
    # Some IdPs (Amazon Cognito among them) send the flag as the string "true".
    flag = claims.get("email_verified")
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


class LakeplaneOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            # The IdP refused the code (already used, PKCE verifier mismatch, expired) or did
            # not answer. The browser goes back to the sign-in page instead of a 500.
            logger.warning("OIDC sign-in failed talking to the provider: %s", exc)
            return None
        return user

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        # An unverified address could claim someone else's account; refuse it.
        email = claims.get("email")
        return isinstance(email, str) and bool(email.strip()) and email_is_verified(claims)

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        email = str(claims.get("email", "")).strip()
        if not email:
            return User.objects.none()
        # Deactivated users are matched too: the callback then refuses them (is_active is
        # checked there), where leaving them out would try to create a second account with
        # their address. Case never makes two people: Alice@Example.com is alice@example.com.
        return User.objects.filter(email__iexact=email)

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> User | None:
        self._check_id_token_claims(payload)
        user: User | None = super().get_or_create_user(access_token, id_token, payload)
        return user

    def _check_id_token_claims(self, payload: dict[str, Any]) -> None:
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        client_id = self.OIDC_RP_CLIENT_ID
        if client_id not in audiences:
            raise SuspiciousOperation("ID token is not addressed to this client")
        if len(audiences) > 1 and payload.get("azp") != client_id:
            raise SuspiciousOperation("ID token was issued to another party")
        issuer = getattr(settings, "OIDC_OP_ISSUER", "")
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation("ID token comes from another issuer")

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        claims = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(claims, dict) or claims.get("sub") != payload.get("sub"):
            # A userinfo answer about someone else must never decide who signs in.
            raise SuspiciousOperation("userinfo subject does not match the ID token")
        return claims

    def create_user(self, claims: dict[str, Any]) -> User:
        email = str(claims["email"]).strip().lower()
        try:
            with transaction.atomic():
                return User.objects.create_user(email=email, name=str(claims.get("name", ""))[:200])
        except IntegrityError:
            # Two callbacks for a first sign-in raced; the other one created the account.
            return User.objects.get(email__iexact=email)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        name = str(claims.get("name", ""))[:200]
        if name and name != user.name:
            user.name = name
            user.save(update_fields=["name"])
        return user
