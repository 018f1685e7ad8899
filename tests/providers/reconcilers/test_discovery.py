"""Discovery for the sweeper: which managed metastore databases an organization owns in an
account, read from their tags in the emulator."""

from __future__ import annotations

import secrets

from controlplane.providers.aws.reconcilers.base import Ownership
from controlplane.providers.aws.reconcilers.discovery import owned_metastore_databases
from controlplane.providers.aws.reconcilers.rds import (
    MetastoreDatabaseReconciler,
    MetastoreDatabaseSpec,
)
from tests.providers.reconcilers.test_platform_reconcilers import Account, run_until_done
from tests.providers.reconcilers.test_rds import account  # noqa: F401


def test_finds_an_orgs_metastore_databases_by_tag_and_any_piece_left(
    account: Account,  # noqa: F811
) -> None:
    network = account.network()
    ours = Ownership(org_id="org_ours", compute_plane_id=f"cp_{secrets.token_hex(6)}")
    theirs = Ownership(org_id="org_theirs", compute_plane_id=f"cp_{secrets.token_hex(6)}")
    whole, partial, foreign = (f"ms_{secrets.token_hex(6)}" for _ in range(3))
    for owner, metastore_id in ((ours, whole), (ours, partial), (theirs, foreign)):
        reconciler = MetastoreDatabaseReconciler(MetastoreDatabaseSpec(metastore_id))
        ctx = account.ctx(owner, **network)
        run_until_done(lambda: reconciler.ensure(ctx))  # noqa: B023
    # Only the subnet group of one is left (its instance and security group already gone).
    partial_id = MetastoreDatabaseSpec(partial).identifier
    rds = account.clients("rds")
    rds.delete_db_instance(DBInstanceIdentifier=partial_id, SkipFinalSnapshot=True)
    ec2 = account.clients("ec2")
    for group in ec2.describe_security_groups(
        Filters=[{"Name": "tag:lakeplane:metastore", "Values": [partial]}]
    )["SecurityGroups"]:
        ec2.delete_security_group(GroupId=group["GroupId"])

    found = owned_metastore_databases(account.clients, "org_ours")

    assert found == {whole: ours.compute_plane_id, partial: ours.compute_plane_id}
    assert owned_metastore_databases(account.clients, "org_theirs") == {
        foreign: theirs.compute_plane_id
    }
