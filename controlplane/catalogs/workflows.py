"""The managed metastore's workflows: its database in RDS, its Hive metastore via the agent.

``metastore.create``: database (subnet group, security group, RDS instance; waits without
holding a worker while RDS creates it, recording each id on ``Metastore.resources`` as it becomes
known) → publish_desired_state (the plane's desired state now carries the metastore) →
wait_for_agent (the agent's report, stored by ``observed_metastores.py``, shows it running with
its schema initialised) → ``ready``.

``metastore.delete``: publish_desired_state (without it: the agent removes the Hive metastore) →
delete_database (final snapshot kept, then the security group and subnet group) → ``deleted``.

A failure leaves the metastore ``failed``, the error on the operation (retry resumes the step).
"""

from __future__ import annotations

from collections.abc import Callable

from controlplane.catalogs.models import Metastore, MetastoreStatus
from controlplane.catalogs.services import METASTORE_CREATE_KIND, METASTORE_DELETE_KIND
from controlplane.clusters.desired import publish_plane
from controlplane.computeplanes.workflows import (
    plane_resource_loader,
    reconcile,
    wait_for_agent_again,
)
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    Step,
    record_on,
    register_resource_workflows,
)
from controlplane.providers.aws.reconcilers.base import ReconcileContext
from controlplane.providers.aws.reconcilers.rds import (
    MetastoreDatabaseReconciler,
    MetastoreDatabaseSpec,
)

_metastore = plane_resource_loader(Metastore)


def database_of(metastore: Metastore) -> MetastoreDatabaseReconciler:
    return MetastoreDatabaseReconciler(MetastoreDatabaseSpec(metastore_id=metastore.pk))


def _on_metastore(
    metastore: Metastore, call: Callable[[ReconcileContext], str]
) -> Callable[[ReconcileContext], str]:
    """Run ``call`` with the plane's state plus the metastore's, recording on the metastore."""

    def run(ctx: ReconcileContext) -> str:
        # The plane's keys (vpc_id, subnets, groups) and the metastore's (db_*) never overlap.
        ctx.state = {**ctx.state, **metastore.resources}
        ctx.record = lambda key, value: record_on(Metastore, metastore.pk, key, value)
        return call(ctx)

    return run


def ensure_database(operation: Operation) -> str:
    metastore = _metastore(operation)
    return reconcile(
        metastore.compute_plane, _on_metastore(metastore, database_of(metastore).ensure)
    )


def delete_database(operation: Operation) -> str:
    metastore = _metastore(operation)
    return reconcile(
        metastore.compute_plane, _on_metastore(metastore, database_of(metastore).delete)
    )


def publish(operation: Operation) -> str:
    plane = _metastore(operation).compute_plane
    published = publish_plane(plane)
    return (
        f"desired state version {published.version} published "
        f"({len(published.metastores)} metastores)"
    )


def wait_for_agent(operation: Operation) -> str:
    metastore = Metastore.objects.get(pk=operation.target_id)
    if metastore.observed_phase == "running" and metastore.schema_ready:
        return "the agent reports the metastore running with its schema ready"
    detail = (
        f"metastore {metastore.observed_phase or 'not reported yet'}, schema "
        f"{'ready' if metastore.schema_ready else 'not ready'}"
    )
    wait_for_agent_again(
        operation,
        detail,
        gave_up=f"The metastore did not start in time ({detail}). Check the compute plane's "
        "agent and the hive-metastore pods' logs (the database is reachable only from the "
        "compute plane's nodes), then retry.",
    )


PUBLISH = Step("publish_desired_state", publish)

register_resource_workflows(
    Metastore,
    [
        (
            METASTORE_CREATE_KIND,
            [Step("database", ensure_database), PUBLISH, Step("wait_for_agent", wait_for_agent)],
            MetastoreStatus.READY,
        ),
        (
            METASTORE_DELETE_KIND,
            [PUBLISH, Step("delete_database", delete_database)],
            MetastoreStatus.DELETED,
        ),
    ],
    failed=MetastoreStatus.FAILED,
)
