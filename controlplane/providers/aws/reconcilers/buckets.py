"""S3 buckets for a compute plane: the Presto/Hive warehouse and the logs.

Bucket names are global across all AWS accounts, so each carries a short hash of the account and
region: ``lakeplane-<cp id>-warehouse-<hash>``. The name is deterministic, which makes it the
lookup key (S3 has no search by tag). Every bucket is encrypted by default (SSE-S3, or SSE-KMS
with the spec's key), versioned, blocks all public access and refuses requests not made over
TLS. Each setting is read first and written only when it differs, so a converged bucket costs
reads only.

Records: ``buckets`` = ``{"warehouse": name, "logs": name}``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.awscall import aws_call
from controlplane.providers.aws.reconcilers.base import (
    NAME_PREFIX,
    PlannedAction,
    PlanVerb,
    ReconcileContext,
    ReconcileError,
    WaitFor,
    error_code,
)

KIND = "s3:bucket"
PURPOSES = ("warehouse", "logs")
MAX_BUCKET_NAME = 63
_PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_MISSING_BUCKET = {"404", "NoSuchBucket", "NotFound"}
# DeleteObjects takes at most 1,000 keys per request.
_DELETE_BATCH = 1000


def bucket_name(compute_plane_id: str, purpose: str, account_id: str, region: str) -> str:
    """``lakeplane-<cp id>-<purpose>-<8 hex>``: lowercase, at most 63 characters."""
    digest = hashlib.sha256(f"{account_id}:{region}".encode()).hexdigest()[:8]
    tail = f"-{purpose}-{digest}"
    plane = compute_plane_id.lower().replace("_", "-")
    plane = plane[: MAX_BUCKET_NAME - len(NAME_PREFIX) - len(tail)].strip("-")
    return f"{NAME_PREFIX}{plane}{tail}"


def _tls_only_policy(name: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def _encryption(ctx: ReconcileContext) -> dict[str, Any]:
    if ctx.spec.kms_key_arn:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ctx.spec.kms_key_arn}
        # A bucket key cuts KMS requests (and their cost) by caching a data key per bucket.
        return {
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        }
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def _read(action: str, fn: Any, absent: set[str], **kwargs: Any) -> dict[str, Any] | None:
    """A Get* call whose "not configured" answer (``absent``) means None."""
    try:
        result: dict[str, Any] = aws_call(action, fn, tolerate=absent, **kwargs)
    except ClientError:
        return None
    return result


class BucketsReconciler:
    name = "buckets"

    def _names(self, ctx: ReconcileContext) -> dict[str, str]:
        recorded = ctx.state.get("buckets") or {}
        if all(recorded.get(p) for p in PURPOSES):
            return {p: str(recorded[p]) for p in PURPOSES}
        identity = aws_call("sts:GetCallerIdentity", ctx.clients("sts").get_caller_identity)
        account = str(identity["Account"])
        return {
            p: bucket_name(ctx.owner.compute_plane_id, p, account, ctx.spec.region)
            for p in PURPOSES
        }

    def _exists(self, s3: Any, name: str) -> bool:
        try:
            aws_call(
                "s3:ListBucket", s3.head_bucket, tolerate=_MISSING_BUCKET | {"403"}, Bucket=name
            )
        except ClientError as exc:
            if error_code(exc) == "403":
                raise ReconcileError(
                    "resource_conflict",
                    f"The S3 bucket name {name} is taken by another AWS account. Delete the "
                    "compute plane and create it with another name.",
                ) from exc
            return False
        return True

    def _tags(self, s3: Any, name: str) -> dict[str, str]:
        result = _read("s3:GetBucketTagging", s3.get_bucket_tagging, {"NoSuchTagSet"}, Bucket=name)
        return {t["Key"]: t["Value"] for t in (result or {}).get("TagSet", [])}

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        s3 = ctx.clients("s3")
        actions = []
        for purpose, name in self._names(ctx).items():
            if not self._exists(s3, name):
                actions.append(PlannedAction("create", KIND, name, purpose))
                continue
            tags = self._tags(s3, name)
            if tags and not ctx.owner.owns(tags):
                actions.append(PlannedAction("create", KIND, name, "conflict: name taken"))
                continue
            drift = self._drift(ctx, s3, name)
            if not tags:
                drift.insert(0, "tags")
            verb: PlanVerb = "update" if drift else "none"
            actions.append(PlannedAction(verb, KIND, name, ", ".join(drift)))
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        s3 = ctx.clients("s3")
        names = self._names(ctx)
        recorded: dict[str, str] = dict(ctx.state.get("buckets") or {})
        created = 0
        for purpose, name in names.items():
            if self._exists(s3, name):
                tags = self._tags(s3, name)
                if tags and not ctx.owner.owns(tags):
                    raise ReconcileError(
                        "resource_conflict",
                        f"The S3 bucket {name} exists but is not tagged as compute plane "
                        f"{ctx.owner.compute_plane_id}'s. Delete it or tag it, then retry.",
                    )
            else:
                self._create(ctx, s3, name)
                tags = {}
                created += 1
            if recorded.get(purpose) != name:
                recorded[purpose] = name
                ctx.remember("buckets", dict(recorded))
            if not tags:
                # Untagged means our own create that stopped before tagging: the name holds
                # this account's hash and this compute plane's id, and only Lakeplane's role
                # creates lakeplane-* buckets.
                aws_call(
                    "s3:PutBucketTagging",
                    s3.put_bucket_tagging,
                    Bucket=name,
                    Tagging={"TagSet": ctx.owner.tags(name)},
                )
            self._configure(ctx, s3, name)
        return f"S3 buckets ready: {', '.join(names.values())} ({created} created)"

    def _create(self, ctx: ReconcileContext, s3: Any, name: str) -> None:
        request: dict[str, Any] = {"Bucket": name}
        if ctx.spec.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            request["CreateBucketConfiguration"] = {"LocationConstraint": ctx.spec.region}
        try:
            aws_call(
                "s3:CreateBucket",
                s3.create_bucket,
                tolerate={"BucketAlreadyOwnedByYou", "BucketAlreadyExists"},
                **request,
            )
        except ClientError as exc:
            if error_code(exc) == "BucketAlreadyExists":
                raise ReconcileError(
                    "resource_conflict",
                    f"The S3 bucket name {name} is taken by another AWS account.",
                ) from exc
            # BucketAlreadyOwnedByYou: a create whose answer was lost; tags are checked next.

    def _drift(self, ctx: ReconcileContext, s3: Any, name: str) -> list[str]:
        drift = []
        encryption = _read(
            "s3:GetEncryptionConfiguration",
            s3.get_bucket_encryption,
            {"ServerSideEncryptionConfigurationNotFoundError"},
            Bucket=name,
        )
        current_rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {})
        want = _encryption(ctx)["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        have = [r.get("ApplyServerSideEncryptionByDefault") for r in current_rules.get("Rules", [])]
        if have != [want]:
            drift.append("encryption")
        versioning = aws_call("s3:GetBucketVersioning", s3.get_bucket_versioning, Bucket=name).get(
            "Status"
        )
        if versioning != "Enabled":
            drift.append("versioning")
        block = _read(
            "s3:GetBucketPublicAccessBlock",
            s3.get_public_access_block,
            {"NoSuchPublicAccessBlockConfiguration"},
            Bucket=name,
        )
        if (block or {}).get("PublicAccessBlockConfiguration") != _PUBLIC_ACCESS_BLOCK:
            drift.append("public access block")
        policy = _read(
            "s3:GetBucketPolicy", s3.get_bucket_policy, {"NoSuchBucketPolicy"}, Bucket=name
        )
        try:
            current_policy = json.loads((policy or {}).get("Policy") or "null")
        except ValueError:
            current_policy = None
        if current_policy != _tls_only_policy(name):
            drift.append("TLS-only policy")
        return drift

    def _configure(self, ctx: ReconcileContext, s3: Any, name: str) -> None:
        drift = self._drift(ctx, s3, name)
        if "encryption" in drift:
            aws_call(
                "s3:PutEncryptionConfiguration",
                s3.put_bucket_encryption,
                Bucket=name,
                ServerSideEncryptionConfiguration=_encryption(ctx),
            )
        if "versioning" in drift:
            aws_call(
                "s3:PutBucketVersioning",
                s3.put_bucket_versioning,
                Bucket=name,
                VersioningConfiguration={"Status": "Enabled"},
            )
        if "public access block" in drift:
            aws_call(
                "s3:PutBucketPublicAccessBlock",
                s3.put_public_access_block,
                Bucket=name,
                PublicAccessBlockConfiguration=_PUBLIC_ACCESS_BLOCK,
            )
        if "TLS-only policy" in drift:
            aws_call(
                "s3:PutBucketPolicy",
                s3.put_bucket_policy,
                Bucket=name,
                Policy=json.dumps(_tls_only_policy(name)),
            )

    def delete(self, ctx: ReconcileContext) -> str:
        s3 = ctx.clients("s3")
        deleted = []
        for name in self._names(ctx).values():
            if not self._exists(s3, name):
                continue
            tags = self._tags(s3, name)
            if tags and not ctx.owner.owns(tags):
                continue  # not ours: never emptied, never deleted
            self._empty(s3, name)
            try:
                aws_call(
                    "s3:DeleteBucket",
                    s3.delete_bucket,
                    tolerate={"NoSuchBucket", "BucketNotEmpty"},
                    Bucket=name,
                )
            except ClientError as exc:
                if error_code(exc) == "BucketNotEmpty":  # written to while we emptied it
                    raise WaitFor(f"S3 bucket {name} received new objects", delay=5) from exc
            deleted.append(name)
        if ctx.state.get("buckets") is not None:
            ctx.forget("buckets")
        return f"S3 buckets deleted: {', '.join(deleted) or 'none left'}"

    def _empty(self, s3: Any, name: str) -> None:
        """Delete every object version and delete marker (a versioned bucket keeps them all)."""
        paginator = s3.get_paginator("list_object_versions")
        pages = aws_call(
            "s3:ListBucketVersions",
            lambda: list(paginator.paginate(Bucket=name)),
        )
        keys = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for page in pages
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(keys), _DELETE_BATCH):
            result = aws_call(
                "s3:DeleteObjectVersion",
                s3.delete_objects,
                Bucket=name,
                Delete={"Objects": keys[start : start + _DELETE_BATCH], "Quiet": True},
            )
            errors = result.get("Errors", [])
            if errors:
                first = errors[0]
                raise ReconcileError(
                    "aws_error",
                    f"Emptying S3 bucket {name} failed for {len(errors)} objects, e.g. "
                    f"{first.get('Key')}: {first.get('Code')}: {first.get('Message')}",
                )


reconciler = BucketsReconciler()
