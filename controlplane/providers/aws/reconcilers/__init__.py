"""One reconciler per AWS resource kind of a compute plane (Cluster-API-for-AWS discipline).

Each has ``plan`` (what ``ensure`` would do now, changing nothing), ``ensure`` (converge,
idempotent) and ``delete`` (idempotent; NotFound is done). See ``base.py``.
"""
