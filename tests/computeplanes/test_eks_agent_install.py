"""The eks install mode: an EKS bearer token derived from the assumed role, and the agent's
install manifests server-side applied with it — checked against a local HTTP recorder that
answers like the API server (no real EKS here)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from computeplane_agent.install import install_manifests
from controlplane.agentapi.models import BOOTSTRAP_SCHEME, digest_of
from controlplane.computeplanes.agentinstall import install_eks_agent
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.workflows import context_for
from controlplane.providers.aws.eks_auth import (
    TOKEN_PREFIX,
    eks_bearer_token,
    presigned_url_of,
)
from controlplane.sandbox.customers import admin_client
from tests.agent.test_kubernetes_target import FakeApiServer
from tests.agent.test_kubernetes_target import api_server as api_server  # the fixture
from tests.factories import ComputePlaneFactory


def _sts(region: str = "eu-west-1"):
    return boto3.client(
        "sts",
        region_name=region,
        endpoint_url=f"https://sts.{region}.amazonaws.com",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def test_token_is_a_presigned_get_caller_identity_bound_to_the_cluster():
    sts = _sts()
    token = eks_bearer_token(sts, "lakeplane-cp-1")
    assert token.startswith(TOKEN_PREFIX)
    assert "=" not in token  # base64url without padding, as aws-iam-authenticator expects
    url = urlsplit(presigned_url_of(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    query = parse_qs(url.query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["Version"] == ["2011-06-15"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert len(query["X-Amz-Signature"][0]) == 64
    # The cluster name is part of the signature: another cluster gives another signature, and
    # the handler does not leak into the client's later presigned URLs.
    other = parse_qs(urlsplit(presigned_url_of(eks_bearer_token(sts, "other"))).query)
    assert other["X-Amz-Signature"] != query["X-Amz-Signature"]
    plain = sts.generate_presigned_url("get_caller_identity", Params={}, HttpMethod="GET")
    assert parse_qs(urlsplit(plain).query)["X-Amz-SignedHeaders"] == ["host"]


@pytest.mark.django_db(transaction=True)
def test_install_applies_the_agent_manifests_with_the_roles_token(
    owner, verified_account, sandbox, api_server: FakeApiServer, settings
):
    settings.LAKEPLANE_PUBLIC_URL = "https://lakeplane.example.com"
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = "lakeplane-cp-eks-install"
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{sandbox.account_id}:role/eks",
        resourcesVpcConfig={"subnetIds": []},
    )
    plane = ComputePlaneFactory(
        organization=owner.org,
        cloud_account=verified_account,
        status="provisioning",
        resources={"eks_cluster_name": name, "eks_endpoint": api_server.url},
    )

    detail = install_eks_agent(plane, context_for(plane).clients)

    expected = install_manifests(control_plane_url="https://lakeplane.example.com")
    assert detail.startswith(f"applied {len(expected)} agent objects")
    requests_ = api_server.requests
    assert [r["method"] for r in requests_] == ["PATCH"] * len(expected)
    assert all(r["content_type"] == "application/apply-patch+yaml" for r in requests_)
    assert all(
        r["query"] == {"fieldManager": ["lakeplane-agent"], "force": ["true"]} for r in requests_
    )
    paths = [r["path"] for r in requests_]
    assert paths[:2] == [
        "/api/v1/namespaces/lakeplane-system",
        "/api/v1/namespaces/lakeplane-workloads",
    ]
    assert "/apis/apps/v1/namespaces/lakeplane-system/deployments/lakeplane-agent" in paths
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/lakeplane-workloads"
    assert f"{rbac}/roles/lakeplane-agent" in paths

    # The one-time token is in the customer's Secret; Lakeplane keeps only its digest.
    secret = next(json.loads(r["body"]) for r in requests_ if "/secrets/" in r["path"])
    token = secret["stringData"]["bootstrap-token"]
    assert token.startswith(f"{BOOTSTRAP_SCHEME}_")
    assert ComputePlane.objects.get(pk=plane.pk).bootstrap_token_digest == digest_of(token)

    # Every call carries an EKS token for this cluster, presigned with the assumed role's
    # temporary credentials (a session token), scoped to STS in the plane's region.
    (authorization,) = {r["authorization"] for r in requests_}
    bearer = authorization.removeprefix("Bearer ")
    assert bearer.startswith(TOKEN_PREFIX)
    url = presigned_url_of(bearer)
    assert url.startswith(sandbox.endpoint_url)
    query = parse_qs(urlsplit(url).query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/sts/aws4_request")
    assert query["X-Amz-Security-Token"][0]  # a role session, not long-lived keys

    # A registered agent is not installed again.
    ComputePlane.objects.filter(pk=plane.pk).update(agent_status="connected")
    plane.refresh_from_db()
    again = install_eks_agent(plane, context_for(plane).clients)
    assert again == "the agent has already registered"
    assert len(api_server.requests) == len(requests_)


@pytest.mark.django_db(transaction=True)
def test_install_against_an_api_server_that_refuses_is_retried(
    owner, verified_account, sandbox, api_server: FakeApiServer, settings
):
    from controlplane.computeplanes.workflows import install_agent
    from controlplane.core.workflows import RetryLater
    from tests.factories import OperationFactory

    settings.LAKEPLANE_AGENT_MODE = "eks"
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    eks.create_cluster(
        name="lakeplane-cp-refused",
        roleArn=f"arn:aws:iam::{sandbox.account_id}:role/eks",
        resourcesVpcConfig={"subnetIds": []},
    )
    plane = ComputePlaneFactory(
        organization=owner.org,
        cloud_account=verified_account,
        status="provisioning",
        resources={"eks_cluster_name": "lakeplane-cp-refused", "eks_endpoint": api_server.url},
    )
    api_server.refuse_with = 403
    operation = OperationFactory(organization=owner.org, target_id=plane.pk)
    with pytest.raises(RetryLater, match="403"):
        install_agent(operation)
