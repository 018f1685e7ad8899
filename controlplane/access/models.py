"""Data access rules: an organization's ordered rule sets, attached to clusters like catalogs.

The rules themselves are the agent contract's ``AccessRule`` documents (computeplane_agent/access.py
holds their meaning, their evaluation order and each engine's rendering), stored as JSON in order.
"""

from __future__ import annotations

from django.db import models

from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import Resource, organization_key


class RuleSet(Resource):
    id = PrefixedIdField("acl")
    organization = organization_key("access_rule_sets")
    rules = models.JSONField(default=list)
    # Bumped by every change; the cluster's desired state carries it.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)


class RuleSetAttachment(models.Model):
    """A cluster enforces at most one rule set."""

    rule_set = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="attachments")
    cluster = models.OneToOneField(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="access_rules"
    )
    attached_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.rule_set_id} on {self.cluster_id}"
