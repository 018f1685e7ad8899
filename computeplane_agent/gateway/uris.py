"""Signed follow-up URIs: the only state a query needs on its way through the gateway.

Every ``nextUri``/``infoUri``/``partialCancelUri`` the client sees is the gateway's own address with
a token that carries the backend URI, the cluster, the routing group and the counters of the query
so far, compressed and signed with HMAC-SHA256 under a key all replicas share. Any replica can
therefore serve any follow-up without a shared store, and a client cannot point the gateway at an
address of its choosing: a token that does not verify is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from typing import Any

PREFIX = "/_lakeplane/v1/q/"
_MAC_BYTES = 16  # 128 bits: forgery stays out of reach and the URI stays short


class TamperedToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64(zlib.compress(json.dumps(payload, separators=(",", ":")).encode()))
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES])
    return f"{body}.{mac}"


def verify(key: bytes, token: str) -> dict[str, Any]:
    body, _, mac = token.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES])
    if not mac or not hmac.compare_digest(mac, expected):
        raise TamperedToken("the URI was not issued by this gateway (signature mismatch)")
    try:
        payload = json.loads(zlib.decompress(_unb64(body)))
    except (ValueError, zlib.error) as exc:
        raise TamperedToken("the URI's payload cannot be read") from exc
    if not isinstance(payload, dict):
        raise TamperedToken("the URI's payload is not an object")
    return payload
