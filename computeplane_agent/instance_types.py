"""EC2 instance types the product sizes Presto/Trino for — the one table of vCPU and memory.

Everything memory-related (container limits, ``-Xmx``, query memory) is derived from this table by
``computeplane_agent.render.memory``; an instance type missing here is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownInstanceType(ValueError):
    """The instance type is not in the supported table."""


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_mib: int


# vCPU per size suffix, and memory (MiB) per vCPU per family. The general-purpose (m), memory
# (r), compute (c) and storage (i) families follow these ratios across their sizes on AWS.
_SIZES: dict[str, int] = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
    "24xlarge": 96,
}
_MIB_PER_VCPU: dict[str, int] = {
    **dict.fromkeys(("m5", "m5a", "m6i", "m6a", "m6g", "m7i", "m7a", "m7g"), 4096),
    **dict.fromkeys(("r5", "r5a", "r6i", "r6a", "r6g", "r7i", "r7a", "r7g"), 8192),
    **dict.fromkeys(("c5", "c6i", "c6a", "c6g", "c7i", "c7a", "c7g"), 2048),
    **dict.fromkeys(("r5d", "r6id", "m6id", "i4i"), 8192),
    # i3: 15.25 GiB per 2 vCPU.
    "i3": 7808,
}

INSTANCE_TYPES: dict[str, InstanceType] = {
    f"{family}.{size}": InstanceType(f"{family}.{size}", vcpu, vcpu * mib)
    for family, mib in _MIB_PER_VCPU.items()
    for size, vcpu in _SIZES.items()
    # c5 has 9xlarge/18xlarge instead of 8xlarge/16xlarge; leave those two out rather than guess.
    if not (family == "c5" and size in ("8xlarge", "16xlarge"))
}


def instance_type(name: str) -> InstanceType:
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise UnknownInstanceType(f"unknown instance type {name!r}") from None
