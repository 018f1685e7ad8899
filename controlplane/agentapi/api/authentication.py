"""``Authorization: Bearer lpa_…`` — the agent's credential, for the agent API only."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from controlplane.agentapi import services
from controlplane.agentapi.models import AgentCredential

REALM = 'Bearer realm="lakeplane-agent"'


class AgentPrincipal:
    """``request.user`` for an agent: authenticated, but no user and no organization role."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, credential: AgentCredential) -> None:
        self.compute_plane_id = credential.compute_plane_id
        self.pk = None
        self.id = None

    def __str__(self) -> str:
        return f"agent of {self.compute_plane_id}"


class AgentCredentialAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, AgentCredential] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if not header or scheme.lower() != "bearer":
            return None  # no credential at all: IsAgent turns that into a 401
        try:
            credential = services.authenticate_credential(secret.strip())
        except services.AgentAuthError as exc:
            raise exceptions.AuthenticationFailed(exc.detail) from exc
        return AgentPrincipal(credential), credential

    def authenticate_header(self, request: Request) -> str:
        return REALM


class IsAgent(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, AgentCredential)
