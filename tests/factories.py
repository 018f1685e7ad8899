"""factory-boy factories for the control plane's models.

``ORG_SCOPED_FACTORIES`` maps each org-scoped model to a function that makes one instance in
a given organization; the generic tenant-isolation test uses it to build a victim object for
every object endpoint. A new org-scoped model needs an entry here (the test says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import factory
from django.db.models import Model

from controlplane.core.models import AuditEvent, Operation, OperationStep
from controlplane.core.roles import Role
from controlplane.tenancy.models import ApiToken, Membership, Organization, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class ApiTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiToken

    organization = factory.SubFactory(OrganizationFactory)
    created_by = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token {n}")
    role = Role.MEMBER
    prefix = factory.Sequence(lambda n: f"f{n:07x}")
    digest = "0" * 64


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    kind = "test.noop"
    target_type = "organization"
    target_id = factory.LazyAttribute(lambda o: o.organization.pk)

    @factory.post_generation
    def steps(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            for i, name in enumerate(extracted or ["first", "second"]):
                OperationStep.objects.create(operation=self, position=i, name=name)


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    organization = factory.SubFactory(OrganizationFactory)
    actor_label = "system:test"
    action = "test.happened"
    target_type = "organization"
    target_id = factory.LazyAttribute(lambda o: o.organization.pk)


def _membership(org: Organization) -> Model:
    return MembershipFactory(organization=org, role=Role.MEMBER)


ORG_SCOPED_FACTORIES: dict[type[Model], Callable[[Organization], Model]] = {
    Organization: lambda org: org,
    Membership: _membership,
    ApiToken: lambda org: ApiTokenFactory(organization=org),
    Operation: lambda org: OperationFactory(organization=org),
    AuditEvent: lambda org: AuditEventFactory(organization=org),
}


# --- cloud accounts ---------------------------------------------------------------------------
from controlplane.cloudaccounts.models import CloudAccount  # noqa: E402
from controlplane.providers.aws.external_id import generate_external_id  # noqa: E402


class CloudAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CloudAccount

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"aws {n}")
    aws_account_id = factory.Sequence(lambda n: f"{210000000000 + n}")
    external_id = factory.LazyFunction(generate_external_id)


ORG_SCOPED_FACTORIES[CloudAccount] = lambda org: CloudAccountFactory(organization=org)


# --- compute planes ---------------------------------------------------------------------------
from controlplane.computeplanes.models import ComputePlane  # noqa: E402


class ComputePlaneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ComputePlane

    organization = factory.SubFactory(OrganizationFactory)
    cloud_account = factory.SubFactory(
        CloudAccountFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"plane-{n}")
    region = "us-east-1"
    kubernetes_version = "1.31"
    status = "ready"


ORG_SCOPED_FACTORIES[ComputePlane] = lambda org: ComputePlaneFactory(organization=org)


# --- clusters ---------------------------------------------------------------------------------
from controlplane.clusters.models import Cluster  # noqa: E402


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    organization = factory.SubFactory(OrganizationFactory)
    compute_plane = factory.SubFactory(
        ComputePlaneFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"cluster-{n}")
    engine = "trino"
    version = "476"
    status = "running"
    coordinator_instance_type = "m6i.xlarge"
    worker_instance_type = "r6i.2xlarge"
    workers_desired = 2
    workers_min = 1
    workers_max = 10


ORG_SCOPED_FACTORIES[Cluster] = lambda org: ClusterFactory(organization=org)


# --- caches -----------------------------------------------------------------------------------
from controlplane.caching.models import Cache  # noqa: E402


class CacheFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cache

    organization = factory.SubFactory(OrganizationFactory)
    compute_plane = factory.SubFactory(
        ComputePlaneFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"cache-{n}")
    version = "2.9.5"
    status = "ready"
    worker_instance_type = "r6i.2xlarge"
    workers = 2
    medium = "mem"
    size_gb_per_worker = 32
    mounts = factory.LazyFunction(lambda: [{"path": "/warehouse", "uri": "s3://acme-lake/wh"}])
    policies = factory.LazyFunction(dict)


ORG_SCOPED_FACTORIES[Cache] = lambda org: CacheFactory(organization=org)


# --- metastores and catalogs ------------------------------------------------------------------
from controlplane.catalogs.models import Catalog, CatalogAttachment, Metastore  # noqa: E402


class MetastoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metastore

    organization = factory.SubFactory(OrganizationFactory)
    compute_plane = factory.SubFactory(
        ComputePlaneFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"metastore-{n}")
    kind = "hive"
    status = "ready"
    uri = "thrift://hms.example.internal:9083"


class CatalogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Catalog

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"catalog_{n}")
    connector = "tpch"
    properties = factory.LazyFunction(lambda: {"splits-per-node": "4"})


def _attached_catalog(org: Organization) -> Model:
    """A catalog on a metastore, attached to a cluster: what its list renders."""
    metastore = MetastoreFactory(organization=org)
    catalog = CatalogFactory(organization=org, connector="hive", metastore=metastore, properties={})
    cluster = ClusterFactory(organization=org, compute_plane=metastore.compute_plane)
    CatalogAttachment.objects.create(catalog=catalog, cluster=cluster, organization=org)
    return catalog


ORG_SCOPED_FACTORIES[Metastore] = lambda org: MetastoreFactory(organization=org)
ORG_SCOPED_FACTORIES[Catalog] = _attached_catalog


# --- billing ----------------------------------------------------------------------------------
from controlplane.billing.models import BillingProfile  # noqa: E402

ORG_SCOPED_FACTORIES[BillingProfile] = lambda org: BillingProfile.objects.get_or_create(
    organization=org, defaults={"monthly_budget_cents": 10_000}
)[0]


# --- gateways ---------------------------------------------------------------------------------
from controlplane.gateways.models import (  # noqa: E402
    Gateway,
    QueryRecord,
    RoutingGroup,
    RoutingRule,
)


def org_plane(org: Organization) -> ComputePlane:
    """The organization's first compute plane (made if none): the gateway's resources of one
    org share it, so a plane's nested lists grow with every factory call."""
    plane = ComputePlane.objects.filter(organization=org).order_by("id").first()
    return plane or ComputePlaneFactory(organization=org)


def _gateway(org: Organization) -> Model:
    return Gateway.objects.create(
        organization=org, compute_plane=ComputePlaneFactory(organization=org)
    )


def routing_group(org: Organization) -> RoutingGroup:
    """A routing group with one running cluster, on the org's first plane."""
    plane = org_plane(org)
    group = RoutingGroup.objects.create(
        organization=org,
        compute_plane=plane,
        name=f"group-{RoutingGroup.objects.count()}-{plane.pk[-6:]}",
    )
    group.clusters.set([ClusterFactory(organization=org, compute_plane=plane)])
    return group


def routing_rule(org: Organization) -> RoutingRule:
    group = routing_group(org)
    return RoutingRule.objects.create(
        organization=org,
        compute_plane=group.compute_plane,
        name=f"rule-{RoutingRule.objects.count()}",
        group=group,
        match={"user": "etl-.*"},
    )


def query_record(org: Organization) -> QueryRecord:
    from django.utils import timezone

    plane = org_plane(org)
    now = timezone.now()
    return QueryRecord.objects.create(
        organization=org,
        compute_plane=plane,
        query_id=f"20261207_{QueryRecord.objects.count():06d}_00000_abcde",
        cluster=ClusterFactory(organization=org, compute_plane=plane),
        routing_group="default",
        user="analyst",
        source="trino-python-client",
        state="FINISHED",
        started_at=now,
        finished_at=now,
    )


ORG_SCOPED_FACTORIES[Gateway] = _gateway
ORG_SCOPED_FACTORIES[RoutingGroup] = routing_group
ORG_SCOPED_FACTORIES[RoutingRule] = routing_rule
ORG_SCOPED_FACTORIES[QueryRecord] = query_record
# --- single sign-on ---------------------------------------------------------------------------
from controlplane.sso import crypto  # noqa: E402
from controlplane.sso.models import SsoConnection, SsoDomain, SsoGroupMapping  # noqa: E402


def _sso_connection(org: Organization) -> Model:
    return SsoConnection.objects.create(
        organization=org,
        issuer="https://idp.example.com",
        client_id="lakeplane",
        client_secret_encrypted=crypto.encrypt("s3cret"),
        authorization_endpoint="https://idp.example.com/auth",
        token_endpoint="https://idp.example.com/token",
        userinfo_endpoint="https://idp.example.com/me",
        jwks_uri="https://idp.example.com/jwks",
    )


ORG_SCOPED_FACTORIES[SsoConnection] = _sso_connection
_sso_sequence = iter(range(1, 10**9))
ORG_SCOPED_FACTORIES[SsoDomain] = lambda org: SsoDomain.objects.create(
    organization=org,
    domain=f"d{next(_sso_sequence)}.{org.slug}.example.com",
    verification_token="t",
)
ORG_SCOPED_FACTORIES[SsoGroupMapping] = lambda org: SsoGroupMapping.objects.create(
    organization=org, group=f"engineers-{next(_sso_sequence)}", role="member"
)

from controlplane.sso.models import ScimToken  # noqa: E402

ORG_SCOPED_FACTORIES[ScimToken] = lambda org: ScimToken.objects.create(
    organization=org, name="idp", prefix=f"p{next(_sso_sequence)}", digest="0" * 64
)


# --- data access rules ------------------------------------------------------------------------
from controlplane.access.models import RuleSet, RuleSetAttachment  # noqa: E402


def _attached_rule_set(org: Organization) -> Model:
    """A rule set enforced by a cluster: what its list renders (the attachments)."""
    rule_set = RuleSet.objects.create(
        organization=org,
        name=f"rules-{RuleSet.objects.count()}",
        rules=[{"effect": "allow", "table": "*.*.*", "privileges": ["read"]}],
    )
    RuleSetAttachment.objects.create(rule_set=rule_set, cluster=ClusterFactory(organization=org))
    return rule_set


ORG_SCOPED_FACTORIES[RuleSet] = _attached_rule_set
