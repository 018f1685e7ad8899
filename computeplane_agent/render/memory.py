"""Memory and CPU sizing of Presto/Trino pods, derived from the instance-type table only."""

from __future__ import annotations

from dataclasses import dataclass

from computeplane_agent.instance_types import instance_type

# EKS reserves memory for the kubelet and system daemons (the AMI's formula reserves 255 MiB plus
# 11 MiB per pod) and the node runs DaemonSets (CNI, kube-proxy, log shipper): keep 10% + 1 GiB
# off the node so the pod fits without eviction.
_NODE_OVERHEAD_FRACTION = 0.10
_NODE_OVERHEAD_MIB = 1024
# The JVM needs room outside the heap (metaspace, code cache, direct buffers, threads).
_HEAP_FRACTION = 0.80
# Per-node query memory leaves the engine's default 30% heap headroom free.
_QUERY_FRACTION_OF_HEAP = 0.50
# CPU left for DaemonSets.
_NODE_CPU_RESERVED_MILLI = 500


@dataclass(frozen=True)
class PodSizing:
    container_memory_mib: int
    heap_mib: int
    query_max_memory_per_node_mib: int
    cpu_request_milli: int


def pod_sizing(instance_type_name: str) -> PodSizing:
    it = instance_type(instance_type_name)
    container = int(it.memory_mib * (1 - _NODE_OVERHEAD_FRACTION)) - _NODE_OVERHEAD_MIB
    heap = int(container * _HEAP_FRACTION)
    return PodSizing(
        container_memory_mib=container,
        heap_mib=heap,
        query_max_memory_per_node_mib=int(heap * _QUERY_FRACTION_OF_HEAP),
        cpu_request_milli=it.vcpu * 1000 - _NODE_CPU_RESERVED_MILLI,
    )
