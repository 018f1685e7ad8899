"""The compute plane's platform steps after networking, in dependency order.

IAM first (EKS needs the cluster role), then the EKS cluster (also needs the network ids the
networking reconcilers record), then the buckets (independent, last so a slow EKS create does not
hold them up in a dry run's reading order).
"""

from __future__ import annotations

from controlplane.providers.aws.reconcilers.base import Reconciler
from controlplane.providers.aws.reconcilers.buckets import reconciler as buckets
from controlplane.providers.aws.reconcilers.eks import reconciler as eks
from controlplane.providers.aws.reconcilers.iam import reconciler as iam

PLATFORM_RECONCILERS: list[Reconciler] = [iam, eks, buckets]

__all__ = ["PLATFORM_RECONCILERS", "buckets", "eks", "iam"]
