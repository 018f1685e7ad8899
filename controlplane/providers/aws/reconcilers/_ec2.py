"""EC2 helpers shared by the network reconcilers: calls, tag lookups, duplicate clean-up.

Identity of a network resource is its ``Name`` tag (``Ownership.resource_name``) together with the
ownership tags: one Name per resource per compute plane. EC2 creates of VPCs, subnets, gateways,
route tables and addresses take no client token, so a create whose response was lost and that
botocore retried leaves two resources with the same Name. Lookups therefore always tolerate
several matches: one is kept (the recorded one, else the one just returned, else the lowest
id — deterministic), the others are removed by the reconciler that owns them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.base import (
    ReconcileContext,
    ReconcileError,
    error_code,
    is_not_found,
    translate_client_error,
)

Resource = dict[str, Any]


def ec2(ctx: ReconcileContext) -> Any:
    return ctx.clients("ec2")


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def call(client: Any, action: str, **params: Any) -> Any:
    """``client.<action>(**params)`` with AWS errors turned into WaitFor / ReconcileError."""
    try:
        return getattr(client, _snake(action))(**params)
    except ClientError as exc:
        raise translate_client_error(exc, f"ec2:{action}") from exc


def call_ignoring(client: Any, action: str, codes: Iterable[str], **params: Any) -> Any | None:
    """Like :func:`call`, but the error ``codes`` (and NotFound) mean "already done"."""
    try:
        return getattr(client, _snake(action))(**params)
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) in set(codes):
            return None
        raise translate_client_error(exc, f"ec2:{action}") from exc


def tag_map(resource: Resource) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def name_of(resource: Resource) -> str:
    return tag_map(resource).get("Name", "")


def describe_owned(
    ctx: ReconcileContext, action: str, result_key: str, **params: Any
) -> list[Resource]:
    """Every resource of one kind that this compute plane owns (all pages).

    Filters by tag on the server and again here: some EC2 APIs (and the emulator, for NAT
    gateways) ignore tag filters, and a foreign resource must never be adopted or deleted.
    """
    client = ec2(ctx)
    filters = ctx.owner.filters() + list(params.pop("Filters", []))
    operation = _snake(action)
    found: list[Resource] = []
    try:
        if client.can_paginate(operation):
            for page in client.get_paginator(operation).paginate(Filters=filters, **params):
                found.extend(page.get(result_key, []))
        else:
            found.extend(getattr(client, operation)(Filters=filters, **params).get(result_key, []))
    except ClientError as exc:
        raise translate_client_error(exc, f"ec2:{action}") from exc
    return [r for r in found if ctx.owner.owns(r.get("Tags"))]


def by_name(resources: Iterable[Resource]) -> dict[str, list[Resource]]:
    grouped: dict[str, list[Resource]] = {}
    for resource in resources:
        grouped.setdefault(name_of(resource), []).append(resource)
    return grouped


def choose(
    candidates: list[Resource], id_key: str, preferred: Iterable[str | None] = ()
) -> tuple[Resource | None, list[Resource]]:
    """(the one to keep, the duplicates): a preferred id if present, else the lowest id."""
    if not candidates:
        return None, []
    ordered = sorted(candidates, key=lambda r: str(r[id_key]))
    keep = ordered[0]
    for wanted in preferred:
        match = next((r for r in ordered if r[id_key] == wanted), None)
        if match is not None:
            keep = match
            break
    return keep, [r for r in ordered if r is not keep]


def tag_specifications(
    ctx: ReconcileContext, resource_type: str, name: str, **extra: str
) -> list[dict[str, Any]]:
    """Tags that land with the create itself, so no untagged resource can ever exist."""
    return [{"ResourceType": resource_type, "Tags": ctx.owner.tags(name, **extra)}]


def create_then_dedupe(
    ctx: ReconcileContext,
    create: Callable[[], Resource],
    find: Callable[[], list[Resource]],
    id_key: str,
    remove: Callable[[Resource], None],
) -> Resource:
    """Create one resource; if a lost response made botocore create it twice, remove the extra.

    ``find`` lists the resources carrying the new one's Name; the create's own result is kept.
    """
    created = create()
    _, extras = choose(find() or [created], id_key, [created[id_key]])
    for extra in extras:
        remove(extra)
    return created


def availability_zones(ctx: ReconcileContext) -> list[str]:
    """The spec's AZ count, chosen deterministically: the first available zones by name.

    Once chosen they are kept in ``state["availability_zones"]`` so a later change in what the
    region offers never moves an existing compute plane's subnets.
    """
    recorded = ctx.state.get("availability_zones")
    if recorded:
        return list(recorded)
    response = call(
        ec2(ctx),
        "DescribeAvailabilityZones",
        Filters=[
            {"Name": "state", "Values": ["available"]},
            {"Name": "zone-type", "Values": ["availability-zone"]},
        ],
    )
    names = sorted(z["ZoneName"] for z in response.get("AvailabilityZones", []))
    wanted = ctx.spec.availability_zones
    if len(names) < wanted:
        raise ReconcileError(
            "invalid_request",
            f"Region {ctx.spec.region} offers {len(names)} availability zones; "
            f"the compute plane asks for {wanted}.",
        )
    return names[:wanted]
