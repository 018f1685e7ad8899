"""Where the agent applies objects: ``kubernetes`` (EKS), ``directory`` (sandbox) or ``memory``."""

from computeplane_agent.targets.base import (
    KubeObject,
    ManagedObject,
    ObjectRef,
    Readiness,
    Target,
    TargetError,
)

__all__ = ["KubeObject", "ManagedObject", "ObjectRef", "Readiness", "Target", "TargetError"]
