"""Signing in through an organization's own provider: authorization code flow with PKCE.

``begin`` builds the authorization request (state, nonce, S256 code challenge) that the
browser's session keeps; ``finish`` exchanges the code, checks the ID token (signature from the
provider's JWKS, issuer, audience, authorized party, expiry, nonce) and the userinfo subject,
then ``admit`` decides who that is in Lakeplane: only addresses of the organization's verified
domains, and the role its group mapping gives, applied at every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.db import transaction

from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.sso import crypto
from controlplane.sso.models import ScimUser, SsoConnection, SsoDomain, TokenAuthMethod
from controlplane.sso.services import role_for_groups, sync_membership
from controlplane.tenancy import services as tenancy
from controlplane.tenancy.models import Membership, User
from controlplane.tenancy.oidc import email_is_verified

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: an HS256 token would be "signed" with the client secret, which
# the provider and we share, and "none" is no signature at all.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
# A sign-in started and not finished within this long is refused (the state is forgotten).
STATE_TTL_S = 600
# At most this many sign-ins in flight per browser session (tabs); the oldest is dropped.
MAX_PENDING = 5
# Clock skew tolerated on exp/iat between the provider and us.
LEEWAY_S = 60

_jwks_clients: dict[str, jwt.PyJWKClient] = {}


class SignInRefused(Exception):
    """Shown to the person signing in; says why without revealing other organizations."""


@dataclass(frozen=True)
class Identity:
    email: str
    name: str
    subject: str
    groups: list[str]


def connection_for_email(email: str) -> SsoConnection | None:
    domain = email.rpartition("@")[2].strip().lower()
    if not domain:
        return None
    row = (
        SsoDomain.objects.filter(domain=domain, verified_at__isnull=False)
        .select_related("organization__sso_connection")
        .first()
    )
    return getattr(row.organization, "sso_connection", None) if row else None


def connection_for_org(slug: str) -> SsoConnection | None:
    return (
        SsoConnection.objects.select_related("organization").filter(organization__slug=slug).first()
    )


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def begin(
    connection: SsoConnection, redirect_uri: str, pending: dict[str, Any], login_hint: str = ""
) -> str:
    """The provider's authorization URL; the state is remembered in ``pending`` (the session's)."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    oldest_first = sorted(pending, key=lambda k: pending[k]["at"])
    for old in oldest_first[: max(0, len(pending) - MAX_PENDING + 1)]:
        del pending[old]
    pending[state] = {
        "connection": connection.pk,
        "nonce": nonce,
        "verifier": verifier,
        "at": time.time(),
    }
    params = {
        "response_type": "code",
        "client_id": connection.client_id,
        "redirect_uri": redirect_uri,
        "scope": connection.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in connection.authorization_endpoint else "?"
    return f"{connection.authorization_endpoint}{separator}{urlencode(params)}"


def _jwks(uri: str) -> jwt.PyJWKClient:
    client = _jwks_clients.get(uri)
    if client is None:
        # Keys are cached for five minutes; a token signed with a key not yet seen refetches the
        # set (PyJWKClient does, at most every 30 s), so key rotation at the provider needs no
        # restart. The fetch is bounded like every other call to the provider.
        client = _jwks_clients[uri] = jwt.PyJWKClient(
            uri, cache_keys=True, lifespan=300, timeout=settings.OIDC_TIMEOUT
        )
    return client


def finish(
    pending: dict[str, Any], state: str, code: str, redirect_uri: str
) -> tuple[SsoConnection, Identity]:
    started = pending.pop(state, None)
    if started is None or time.time() - started["at"] > STATE_TTL_S:
        raise SignInRefused("This sign-in expired or was not started here; start again.")
    connection = (
        SsoConnection.objects.select_related("organization")
        .filter(pk=started["connection"])
        .first()
    )
    if connection is None:
        raise SignInRefused("The organization's single sign-on was removed.")
    secret = crypto.decrypt(connection.client_secret_encrypted)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": started["verifier"],
    }
    auth: tuple[str, str] | None = None
    if connection.token_endpoint_auth_method == TokenAuthMethod.CLIENT_SECRET_POST:
        form.update(client_id=connection.client_id, client_secret=secret)
    else:
        auth = (connection.client_id, secret)
    timeout = settings.OIDC_TIMEOUT
    try:
        response = requests.post(connection.token_endpoint, data=form, auth=auth, timeout=timeout)
        response.raise_for_status()
        tokens = response.json()
        id_token = tokens["id_token"]
        access_token = tokens["access_token"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        logger.warning("SSO code exchange with %s failed: %s", connection.issuer, exc)
        raise SignInRefused("The identity provider refused the sign-in.") from None
    try:
        key = _jwks(connection.jwks_uri).get_signing_key_from_jwt(id_token)
        claims = jwt.decode(
            id_token,
            key.key,
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=connection.client_id,
            issuer=connection.issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        logger.warning("SSO ID token from %s refused: %s", connection.issuer, exc)
        raise SignInRefused("The identity provider's answer could not be verified.") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != connection.client_id:
        raise SignInRefused("The ID token was issued to another party.")
    if not secrets.compare_digest(str(claims.get("nonce", "")), started["nonce"]):
        raise SignInRefused("The ID token does not belong to this sign-in.")
    try:
        info = requests.get(
            connection.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
        )
        info.raise_for_status()
        userinfo = info.json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("SSO userinfo from %s failed: %s", connection.issuer, exc)
        raise SignInRefused("The identity provider did not say who you are.") from None
    if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
        # OpenID Connect Core §5.3.2: a userinfo answer about someone else decides nothing.
        raise SignInRefused("The identity provider's answers disagree.")
    merged = {**claims, **userinfo}
    email = merged.get("email")
    if not isinstance(email, str) or not email.strip() or not email_is_verified(merged):
        raise SignInRefused("The identity provider did not vouch for your email address.")
    raw_groups = merged.get(connection.group_claim) or []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = sorted({str(g) for g in raw_groups if isinstance(g, (str, int))})
    return connection, Identity(
        email=email.strip().lower(),
        name=str(merged.get("name", ""))[:200],
        subject=str(claims["sub"]),
        groups=groups,
    )


def admit(connection: SsoConnection, identity: Identity) -> User:
    """The Lakeplane user for a verified identity, with the membership its groups give.

    The provider speaks only for its organization's verified domains: an address elsewhere
    could otherwise take over someone else's account. Losing every mapped group removes the
    membership (and revokes the member's tokens); a lower role caps them
    (``tenancy.services``). The break-glass owner's membership is never changed by the
    mapping, and the last owner is kept, so a provider mistake cannot orphan the organization.
    """
    organization = connection.organization
    domain = identity.email.rpartition("@")[2]
    if not SsoDomain.objects.filter(
        organization=organization, domain=domain, verified_at__isnull=False
    ).exists():
        raise SignInRefused(f"{organization.name}'s provider cannot sign in addresses at {domain}.")
    with transaction.atomic():
        user = tenancy.get_or_create_user(identity.email)
        if not user.is_active:
            raise SignInRefused("This account is deactivated.")
        provisioned = ScimUser.objects.filter(organization=organization, user=user).first()
        if provisioned is not None and not provisioned.active:
            raise SignInRefused(f"Your account at {organization.name} is deactivated.")
        # Groups come from the ID token's claim and from what the IdP pushed through SCIM.
        scim_groups = (
            list(provisioned.groups.values_list("display_name", flat=True)) if provisioned else []
        )
        mapped = role_for_groups(organization, sorted({*identity.groups, *scim_groups}))
        if identity.name and not user.name:
            user.name = identity.name
            user.save(update_fields=["name"])
        actor = Actor(user=user, system="sso")
        membership = (
            Membership.objects.select_for_update()
            .filter(organization=organization, user=user)
            .first()
        )
        before = membership.role if membership else None
        after = sync_membership(actor, organization, user, membership, mapped.role)
        audit.record(
            actor=actor,
            organization=organization,
            action="sso.signed_in" if after else "sso.sign_in_refused",
            target=user,
            data={
                "issuer": connection.issuer,
                "subject": identity.subject,
                "groups": mapped.groups,
                "role_before": before,
                "role_after": after,
            },
        )
    if after is None:
        raise SignInRefused(f"You are not in a group that gives access to {organization.name}.")
    return user
