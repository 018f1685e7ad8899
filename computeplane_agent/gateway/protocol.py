"""The pieces of the Presto/Trino client protocol the gateway speaks for itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from computeplane_agent.gateway.routing import RequestFacts

FAMILIES = ("x-trino-", "x-presto-")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A protocol header in either family (``User`` -> X-Trino-User or X-Presto-User)."""
    for family in FAMILIES:
        value = headers.get(f"{family}{name}")
        if value is not None:
            return value
    return None


def facts_from(headers: Mapping[str, str]) -> RequestFacts:
    """What routing looks at, read from the request's headers (lower-cased names)."""
    tags = header(headers, "client-tags") or ""
    return RequestFacts(
        user=header(headers, "user"),
        source=header(headers, "source"),
        client_tags=tuple(t.strip() for t in tags.split(",") if t.strip()),
        headers=dict(headers),
        catalog=header(headers, "catalog"),
        schema=header(headers, "schema"),
    )


def _stats(state: str, elapsed_ms: int = 0) -> dict[str, Any]:
    return {
        "state": state,
        "queued": state == "QUEUED",
        "scheduled": False,
        "nodes": 0,
        "totalSplits": 0,
        "queuedSplits": 0,
        "runningSplits": 0,
        "completedSplits": 0,
        "cpuTimeMillis": 0,
        "wallTimeMillis": elapsed_ms,
        "queuedTimeMillis": elapsed_ms,
        "elapsedTimeMillis": elapsed_ms,
        "processedRows": 0,
        "processedBytes": 0,
        "peakMemoryBytes": 0,
    }


def queued(query_id: str, info_uri: str, next_uri: str, elapsed_ms: int) -> dict[str, Any]:
    return {
        "id": query_id,
        "infoUri": info_uri,
        "nextUri": next_uri,
        "stats": _stats("QUEUED", elapsed_ms),
    }


def failed(
    query_id: str, info_uri: str, message: str, name: str, code: int = 65536
) -> dict[str, Any]:
    """A FAILED QueryResults with the protocol's error object (clients raise it as an error)."""
    return {
        "id": query_id,
        "infoUri": info_uri,
        "stats": _stats("FAILED"),
        "error": {
            "message": message,
            "errorCode": code,
            "errorName": name,
            "errorType": "EXTERNAL",
            "failureInfo": {
                "type": "io.lakeplane.gateway.GatewayError",
                "message": message,
                "suppressed": [],
                "stack": [],
            },
        },
    }
