"""Names are unique per organization among live (not deleted) objects of a kind."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from controlplane.core.errors import InvalidInput


def name_taken(name: str) -> InvalidInput:
    """The 422 for a name another live object of the organization already has."""
    return InvalidInput("The name is taken.", errors={"name": [f"'{name}' already exists."]})


def ensure_name_free(
    model: type[Model], organization_id: Any, name: str, *, exclude: Any = None
) -> None:
    """Raise :func:`name_taken` if a live ``model`` of the organization (other than
    ``exclude``) is called ``name``. The models' partial unique constraints stay the last word
    under concurrency; this check gives the field error before the write."""
    taken = model._default_manager.filter(
        organization_id=organization_id, name=name, deleted_at__isnull=True
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise name_taken(name)
