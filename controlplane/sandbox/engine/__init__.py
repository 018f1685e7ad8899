"""The sandbox engine: a local stand-in for a cluster's coordinator (dev, test and demo only).

It is to a Presto or Trino cluster what the AWS emulator is to AWS: a process per running
cluster that speaks the engines' client protocol (``server.py``) and answers SQL with DuckDB
(``sql.py``: a ``tpch`` catalog with the ``tiny`` schema and a ``memory`` catalog).
``supervisor.py`` runs one engine per cluster the sandbox's local agent has applied. No product
code imports this package; the product reaches an engine over HTTP exactly as a coordinator.
See docs/sandbox.md.
"""
