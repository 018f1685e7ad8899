"""Durable operations, the audit log, and the abstract base of every organization's resource."""

from __future__ import annotations

from typing import Any

from django.db import models

from controlplane.core.ids import PrefixedIdField


class OperationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATUSES = {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELED}


class StepStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Operation(models.Model):
    """A long-running change to cloud resources: ordered steps run by Celery tasks."""

    id = PrefixedIdField("op")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="operations"
    )
    kind = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40)
    status = models.CharField(
        max_length=10, choices=OperationStatus.choices, default=OperationStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0)
    # Inputs the workflow needs beyond the target row (ids and settings only, never secrets).
    params = models.JSONField(default=dict, blank=True)
    # Resource ids recorded the moment AWS returns them, so a resumed step adopts them.
    resources = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the next advance_operation message is due (now, or after a step's poll delay);
    # NULL once finished. A message that is long overdue was lost (a web process or worker
    # died holding it, the broker was down when it was sent): resume_stalled_operations
    # sends another.
    next_delivery_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The API's JSON for this operation and its steps, or NULL when it must be rebuilt: see
    # controlplane/core/representation.py. Triggers (migration 0003) clear it on any change.
    # NULL, not "", on purpose: the triggers' "rebuild me" marker must differ from any value.
    representation = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-id"], name="op_org_recent"),
            models.Index(fields=["target_type", "target_id"], name="op_target"),
            # The stalled-operation sweep reads only unfinished operations.
            models.Index(
                fields=["next_delivery_at"],
                name="op_unfinished_due",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.status}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A plain save() of an existing row writes every column but ``representation``: an
        # instance loaded before a step changed would otherwise write back a stale value.
        # Only representation.store() and the list's rebuild write it, by name.
        if kwargs.get("update_fields") is None and not self._state.adding:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "representation"
            ]
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class OperationStep(models.Model):
    id = PrefixedIdField("step")
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Failures in a row (unexpected errors and runs whose worker died), kept apart from
    # ``attempts`` so that polling AWS with RetryLater never spends the error budget.
    errors = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["operation", "position"], name="uniq_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.operation_id}#{self.position} {self.name} {self.status}"


class AuditEvent(models.Model):
    id = PrefixedIdField("evt")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="audit_events"
    )
    actor_user = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_token = models.ForeignKey(
        "tenancy.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: the log must still say who acted after a user or token is deleted.
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-id"], name="audit_org_recent")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"


# --- the shape every resource shares ----------------------------------------------------------


def live_name_unique(name: str) -> models.UniqueConstraint:
    """One live (not deleted) object of a kind per name in an organization."""
    return models.UniqueConstraint(
        fields=["organization", "name"], condition=models.Q(deleted_at__isnull=True), name=name
    )


def organization_key(related_name: str) -> models.ForeignKey[Any, Any]:
    """The owning organization of a :class:`Resource`; ``related_name`` is its accessor there
    (``organization.caches``). Declared per model: migrations record the accessor by name."""
    return models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name=related_name
    )


class DriftChecked(models.Model):
    """What the periodic drift check records on what it checks (cloud accounts, compute planes):
    ``[{check, detail}]`` of its last finding, when it last looked, and when it looks next
    (staggered per row, so tenants are spread out)."""

    findings = models.JSONField(default=list, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class Resource(models.Model):
    """An organization's named resource, soft-deleted (``deleted_at``) so its history stays.

    Concrete models declare their ``id`` (a :class:`PrefixedIdField`), ``organization =
    organization_key("<accessor>")`` and what is their own. The live-name constraint is
    ``uniq_live_<model>_name``; a model named otherwise keeps its name in ``Meta.constraints``
    (see ``ComputePlane``).
    """

    organization: models.ForeignKey[Any, Any]
    name = models.CharField(max_length=63)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        constraints = [live_name_unique("uniq_live_%(class)s_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.pk})"


class OperatedResource(Resource):
    """A resource whose changes run as operations; ``operation`` is the latest one."""

    operation = models.ForeignKey(
        "core.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Resource.Meta):
        abstract = True


class RateLimitWindow(models.Model):
    """A rate-limit key's current window, where the broker is not Redis (core/ratelimit.py)."""

    bucket = models.CharField(max_length=80, primary_key=True)  # scope and a digest
    window_start = models.FloatField()  # seconds since the epoch
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["window_start"], name="ratelimit_window_start")]

    def __str__(self) -> str:
        return f"{self.bucket}: {self.attempts}"
