"""The compute plane's platform steps after networking, in dependency order.

IAM first (EKS needs the cluster role), then the EKS cluster (also needs the network ids the
networking reconcilers record), then the system node group Lakeplane's own pods run on (needs
the cluster and the node role), then EKS Pod Identity for the agent (needs the cluster and the
agent role), then the buckets (independent, last so a slow EKS create does not hold them up in
a dry run's reading order). Teardown runs them reversed: the node group goes before the cluster,
which EKS requires.
"""

from __future__ import annotations

from controlplane.providers.aws.reconcilers.base import Reconciler
from controlplane.providers.aws.reconcilers.buckets import reconciler as buckets
from controlplane.providers.aws.reconcilers.eks import reconciler as eks
from controlplane.providers.aws.reconcilers.iam import reconciler as iam
from controlplane.providers.aws.reconcilers.podidentity import reconciler as pod_identity
from controlplane.providers.aws.reconcilers.systemnodes import reconciler as system_nodes

PLATFORM_RECONCILERS: list[Reconciler] = [iam, eks, system_nodes, pod_identity, buckets]

__all__ = ["PLATFORM_RECONCILERS", "buckets", "eks", "iam", "pod_identity", "system_nodes"]
