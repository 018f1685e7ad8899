"""Talking to an EKS cluster's Kubernetes API as the role Lakeplane assumed in the customer account.

EKS authenticates IAM principals with a bearer token that is a presigned STS
``GetCallerIdentity`` URL (aws-iam-authenticator's format): the cluster name is bound into the
signature through the ``x-k8s-aws-id`` header, the URL is base64url-encoded without padding and
prefixed ``k8s-aws-v1.``. The API server replays the URL against STS to learn who is calling; the
signature is only valid for ``expires_in`` seconds, so a token is derived per use, never stored.
"""

from __future__ import annotations

import base64
import tempfile
from typing import Any

from kubernetes import client

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# aws-iam-authenticator refuses presigned URLs valid for more than 15 minutes; one minute is
# plenty for one install.
TOKEN_EXPIRES_SECONDS = 60


def eks_bearer_token(
    sts_client: Any, cluster_name: str, *, expires_in: int = TOKEN_EXPIRES_SECONDS
) -> str:
    """A bearer token for ``cluster_name`` from a boto3 STS client (already acting as the role)."""

    def bind_cluster(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    # The handler is registered on this client only and removed after use, so a cached client
    # never signs another cluster's name into a later token.
    event = "before-sign.sts.GetCallerIdentity"
    sts_client.meta.events.register(event, bind_cluster)
    try:
        url: str = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=expires_in, HttpMethod="GET"
        )
    finally:
        sts_client.meta.events.unregister(event, bind_cluster)
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded


def presigned_url_of(token: str) -> str:
    """The STS URL inside a token (what the API server calls); for checks and diagnostics."""
    body = token.removeprefix(TOKEN_PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def kubernetes_api_client(
    endpoint: str, certificate_authority: str | None, token: str
) -> client.ApiClient:
    """A Kubernetes API client for the cluster at ``endpoint``.

    ``certificate_authority`` is EKS's base64 PEM (``cluster.certificateAuthority.data``); the
    client library only takes a CA file, so it is written to a private temporary file.
    """
    configuration = client.Configuration(host=endpoint)
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    if certificate_authority:
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as ca_file:
            ca_file.write(base64.b64decode(certificate_authority))
        configuration.ssl_ca_cert = ca_file.name
    return client.ApiClient(configuration)
