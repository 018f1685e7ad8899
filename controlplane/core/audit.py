"""Who acted, and the one function that writes the audit log.

Every write service takes ``actor=`` and calls :func:`record` inside its own transaction, so
an audit row exists exactly when the change it describes was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models

from controlplane.core.models import AuditEvent

if TYPE_CHECKING:
    from django.http import HttpRequest

    from controlplane.tenancy.models import ApiToken, Organization, User


@dataclass(frozen=True)
class Actor:
    user: User | None = None
    token: ApiToken | None = None
    source_ip: str | None = None
    system: str = ""  # "celery", "bootstrap", "sweeper" for actions nobody clicked

    @property
    def label(self) -> str:
        if self.token is not None:
            return f"token:{self.token.name} ({self.token.prefix})"
        if self.user is not None:
            return self.user.email
        return f"system:{self.system or 'lakeplane'}"

    @classmethod
    def system_actor(cls, name: str) -> Actor:
        return cls(system=name)


def client_ip(request: HttpRequest) -> str | None:
    hops = settings.LAKEPLANE_TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    actor: Actor,
    organization: Organization,
    action: str,
    target: models.Model | tuple[str, str],
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    if isinstance(target, tuple):
        target_type, target_id = target
    else:
        target_type, target_id = target._meta.model_name or "", str(target.pk)
    return AuditEvent.objects.create(
        organization=organization,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data or {},
        source_ip=actor.source_ip,
    )
