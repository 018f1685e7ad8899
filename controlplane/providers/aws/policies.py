"""The one source of the customer role's IAM policies.

The trust policy and the permissions policy are built here, once. From them
``onboarding_artifacts.py`` builds every onboarding artifact: the CloudFormation template and its
quick-create link, and the Terraform module ``infra/modules/customer-role`` (its policy files
are generated, ``python -m controlplane.providers.aws.onboarding_artifacts write-terraform``,
and a test fails when they drift). Here:

* the raw JSON policies (:func:`trust_policy`, :func:`permissions_policy`),
* the customer-managed policy ``lakeplane-agent-secrets`` (:func:`agent_secrets_policy`) that
  both onboarding artifacts create and the compute plane's agent role gets attached: the
  agent, inside the customer's VPC, reads the secrets catalogs name; the control plane never can.

Least privilege, in words: Lakeplane may read the shape of the account (EC2/EKS describes), create
networking, EKS clusters, node groups, the Pod Identity add-on and associations (passing only the
agent roles to EKS Pod Identity), IAM roles and instance profiles under the ``/lakeplane/`` path,
S3 buckets named ``lakeplane-…`` and the RDS PostgreSQL databases of managed metastores
(whose master passwords RDS keeps in Secrets Manager); it may change or delete only what carries
the tag ``lakeplane:managed-by=lakeplane``; it can read no customer data (no object reads outside
its own buckets, no secret values, no Glue or Athena data). The only policies it may attach are
the AWS-managed EKS ones and the customer's own ``lakeplane-agent-secrets``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

# JSON-shaped values. Policy builders accept placeholders (a CloudFormation ``{"Ref": …}`` or a
# Terraform template variable) wherever a literal would go, so all artifacts share one builder.
JsonValue = Any
PolicyDocument = dict[str, Any]

POLICY_VERSION: Final = "2012-10-17"
MANAGED_TAG_KEY: Final = "lakeplane:managed-by"
MANAGED_TAG_VALUE: Final = "lakeplane"
TENANT_TAG_KEY: Final = "lakeplane:org"
# Resources Lakeplane creates are named and pathed so the policy can be scoped to them.
NAME_PREFIX: Final = "lakeplane-"
MANAGED_IAM_PATH: Final = "/lakeplane/"
# The cross-account role itself lives on a different path, so the grants on /lakeplane/ roles
# can never be used by Lakeplane to edit or delete its own access role.
ACCESS_ROLE_PATH: Final = "/lakeplane-access/"
ACCESS_POLICY_NAME: Final = "lakeplane-control-plane"
# Created by the customer's onboarding stack (so the customer owns and may narrow it), attached
# by Lakeplane to each compute plane's agent role.
AGENT_SECRETS_POLICY_NAME: Final = "lakeplane-agent-secrets"
SESSION_DURATION_SECONDS: Final = 3600

_MANAGED_ON_CREATE: Final = {
    "StringEquals": {f"aws:RequestTag/{MANAGED_TAG_KEY}": MANAGED_TAG_VALUE}
}
_MANAGED_RESOURCE: Final = {
    "StringEquals": {f"aws:ResourceTag/{MANAGED_TAG_KEY}": MANAGED_TAG_VALUE}
}
_MANAGED_ROLES: Final = f"arn:aws:iam::*:role{MANAGED_IAM_PATH}{NAME_PREFIX}*"
# The agent role of every compute plane (iam.py names it ``lakeplane-<plane>-agent``).
_AGENT_ROLES: Final = f"arn:aws:iam::*:role{MANAGED_IAM_PATH}{NAME_PREFIX}*-agent"
_MANAGED_INSTANCE_PROFILES: Final = (
    f"arn:aws:iam::*:instance-profile{MANAGED_IAM_PATH}{NAME_PREFIX}*"
)
_LAKEPLANE_BUCKETS: Final = f"arn:aws:s3:::{NAME_PREFIX}*"
# AWS-managed policies an EKS cluster and its nodes need.
EKS_MANAGED_POLICY_ARNS: Final = (
    "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)


def agent_secrets_policy_arn(account_id: str) -> str:
    """The ARN of the customer's ``lakeplane-agent-secrets`` policy in ``account_id``."""
    return f"arn:aws:iam::{account_id}:policy{MANAGED_IAM_PATH}{AGENT_SECRETS_POLICY_NAME}"


# Every policy the customer role may attach, and no other. The agent-secrets policy's account is
# a wildcard only because the policy is identical for every tenant: IAM attaches customer-managed
# policies of the role's own account only, so this names exactly the customer's one policy.
ATTACHABLE_POLICY_ARNS: Final = (*EKS_MANAGED_POLICY_ARNS, agent_secrets_policy_arn("*"))

# EC2 resources created during provisioning; each create must carry the managed tag.
_EC2_CREATE_ACTIONS: Final = (
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateInternetGateway",
    "ec2:CreateNatGateway",
    "ec2:AllocateAddress",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateVpcEndpoint",
)
# Changes and deletes of EC2 resources, only on resources tagged as Lakeplane's.
_EC2_MANAGED_ACTIONS: Final = (
    "ec2:ModifyVpcAttribute",
    "ec2:ModifySubnetAttribute",
    "ec2:AttachInternetGateway",
    "ec2:DetachInternetGateway",
    "ec2:CreateRoute",
    "ec2:ReplaceRoute",
    "ec2:DeleteRoute",
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:DeleteLaunchTemplate",
    "ec2:DeleteVpcEndpoints",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteRouteTable",
    "ec2:DeleteNatGateway",
    "ec2:ReleaseAddress",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteSubnet",
    "ec2:DeleteVpc",
)


def trust_policy(vendor_principal: JsonValue, external_id: JsonValue) -> PolicyDocument:
    """Who may assume the customer role: the vendor principal, and only with the external ID.

    ``vendor_principal`` is the ARN of Lakeplane's control-plane role (or account root) in the
    vendor account; ``external_id`` is the cloud account's external ID. Either may be a
    placeholder for a template (see module docstring).
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "LakeplaneControlPlaneWithExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": vendor_principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def permissions_policy() -> PolicyDocument:
    """What the customer role allows Lakeplane to do (identical for every tenant)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DescribeAccountShape",
                "Effect": "Allow",
                "Action": [
                    "ec2:Describe*",
                    "eks:Describe*",
                    "eks:List*",
                    "s3:ListAllMyBuckets",
                    "sts:GetCallerIdentity",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ReadOwnAccessRole",
                "Effect": "Allow",
                "Action": ["iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy"],
                "Resource": f"arn:aws:iam::*:role{ACCESS_ROLE_PATH}*",
            },
            {
                "Sid": "CreateTaggedNetworking",
                "Effect": "Allow",
                "Action": list(_EC2_CREATE_ACTIONS),
                "Resource": "*",
                "Condition": _MANAGED_ON_CREATE,
            },
            {
                "Sid": "TagOnlyWhileCreating",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": [a[4:] for a in _EC2_CREATE_ACTIONS]}
                },
            },
            {
                "Sid": "ChangeAndDeleteManagedNetworking",
                "Effect": "Allow",
                "Action": list(_EC2_MANAGED_ACTIONS),
                "Resource": "*",
                "Condition": _MANAGED_RESOURCE,
            },
            {
                "Sid": "CreateTaggedEks",
                "Effect": "Allow",
                # The add-on is the Pod Identity agent; the association maps the compute plane's
                # agent service account to its agent role.
                "Action": [
                    "eks:CreateCluster",
                    "eks:CreateNodegroup",
                    "eks:CreateAddon",
                    "eks:CreatePodIdentityAssociation",
                    "eks:TagResource",
                ],
                "Resource": "*",
                "Condition": _MANAGED_ON_CREATE,
            },
            {
                "Sid": "ChangeAndDeleteManagedEks",
                "Effect": "Allow",
                "Action": [
                    "eks:UpdateClusterConfig",
                    "eks:UpdateClusterVersion",
                    "eks:UpdateNodegroupConfig",
                    "eks:UpdateNodegroupVersion",
                    "eks:DeleteNodegroup",
                    "eks:DeleteAddon",
                    "eks:DeletePodIdentityAssociation",
                    "eks:DeleteCluster",
                ],
                "Resource": "*",
                "Condition": _MANAGED_RESOURCE,
            },
            {
                "Sid": "ReadManagedIam",
                "Effect": "Allow",
                "Action": [
                    "iam:GetRole",
                    "iam:GetInstanceProfile",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListInstanceProfilesForRole",
                ],
                "Resource": [_MANAGED_ROLES, _MANAGED_INSTANCE_PROFILES],
            },
            {
                "Sid": "CreateTaggedIam",
                "Effect": "Allow",
                "Action": [
                    "iam:CreateRole",
                    "iam:TagRole",
                    "iam:CreateInstanceProfile",
                    "iam:TagInstanceProfile",
                ],
                "Resource": [_MANAGED_ROLES, _MANAGED_INSTANCE_PROFILES],
                "Condition": _MANAGED_ON_CREATE,
            },
            {
                # The EKS policies and the customer's own agent-secrets policy; never an inline
                # policy (no iam:PutRolePolicy), so Lakeplane cannot grant itself anything.
                "Sid": "AttachOnlyListedPolicies",
                "Effect": "Allow",
                "Action": "iam:AttachRolePolicy",
                "Resource": _MANAGED_ROLES,
                "Condition": {"ArnEquals": {"iam:PolicyARN": list(ATTACHABLE_POLICY_ARNS)}},
            },
            {
                "Sid": "ChangeAndDeleteManagedIam",
                "Effect": "Allow",
                "Action": [
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DetachRolePolicy",
                    "iam:DeleteInstanceProfile",
                    "iam:DeleteRole",
                ],
                "Resource": [_MANAGED_ROLES, _MANAGED_INSTANCE_PROFILES],
                "Condition": _MANAGED_RESOURCE,
            },
            {
                "Sid": "PassManagedRolesToEksAndEc2",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": _MANAGED_ROLES,
                "Condition": {
                    "StringEquals": {
                        "iam:PassedToService": ["eks.amazonaws.com", "ec2.amazonaws.com"]
                    }
                },
            },
            {
                # CreatePodIdentityAssociation passes the role; only the agent roles, only to
                # EKS Pod Identity.
                "Sid": "PassAgentRolesToEksPodIdentity",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": _AGENT_ROLES,
                "Condition": {"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}},
            },
            {
                "Sid": "EksServiceLinkedRoles",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "arn:aws:iam::*:role/aws-service-role/*",
                "Condition": {
                    "StringEquals": {
                        "iam:AWSServiceName": ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"]
                    }
                },
            },
            {
                "Sid": "CreateTaggedBuckets",
                "Effect": "Allow",
                "Action": ["s3:CreateBucket", "s3:PutBucketTagging"],
                "Resource": _LAKEPLANE_BUCKETS,
                "Condition": _MANAGED_ON_CREATE,
            },
            {
                "Sid": "ConfigureOwnBuckets",
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketLocation",
                    "s3:GetBucketTagging",
                    "s3:ListBucket",
                    "s3:PutBucketPublicAccessBlock",
                    "s3:PutEncryptionConfiguration",
                    "s3:PutBucketVersioning",
                    "s3:PutLifecycleConfiguration",
                    # Read before write, so a converged bucket costs no change (and no drift).
                    "s3:GetEncryptionConfiguration",
                    "s3:GetBucketVersioning",
                    "s3:GetBucketPublicAccessBlock",
                    "s3:GetBucketPolicy",
                    # The TLS-only (deny aws:SecureTransport=false) bucket policy.
                    "s3:PutBucketPolicy",
                    "s3:ListBucketVersions",
                ],
                "Resource": _LAKEPLANE_BUCKETS,
            },
            {
                # Lakeplane's own logs and state only: the bucket prefix keeps customer data out.
                "Sid": "ReadWriteOwnBucketObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{_LAKEPLANE_BUCKETS}/*",
            },
            {
                # A versioned bucket must be emptied of every version before it can go.
                "Sid": "DeleteManagedBuckets",
                "Effect": "Allow",
                "Action": ["s3:DeleteBucket", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                "Resource": [_LAKEPLANE_BUCKETS, f"{_LAKEPLANE_BUCKETS}/*"],
                "Condition": _MANAGED_RESOURCE,
            },
            {
                # The PostgreSQL databases of managed Hive metastores.
                "Sid": "DescribeRds",
                "Effect": "Allow",
                "Action": [
                    "rds:DescribeDBInstances",
                    "rds:DescribeDBSubnetGroups",
                    "rds:DescribeDBSnapshots",
                    "rds:ListTagsForResource",
                ],
                "Resource": "*",
            },
            {
                "Sid": "CreateTaggedRds",
                "Effect": "Allow",
                "Action": [
                    "rds:CreateDBInstance",
                    "rds:CreateDBSubnetGroup",
                    "rds:AddTagsToResource",
                ],
                "Resource": "*",
                "Condition": _MANAGED_ON_CREATE,
            },
            {
                "Sid": "ChangeAndDeleteManagedRds",
                "Effect": "Allow",
                "Action": [
                    "rds:ModifyDBInstance",
                    "rds:ModifyDBSubnetGroup",
                    "rds:DeleteDBInstance",
                    "rds:DeleteDBSubnetGroup",
                ],
                "Resource": "*",
                "Condition": _MANAGED_RESOURCE,
            },
            {
                # The final snapshot a deleted metastore's database leaves (named lakeplane-…).
                "Sid": "FinalSnapshotsOfManagedRds",
                "Effect": "Allow",
                "Action": "rds:CreateDBSnapshot",
                "Resource": [
                    f"arn:aws:rds:*:*:db:{NAME_PREFIX}*",
                    f"arn:aws:rds:*:*:snapshot:{NAME_PREFIX}*",
                ],
            },
            {
                "Sid": "RdsServiceLinkedRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "arn:aws:iam::*:role/aws-service-role/*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "rds.amazonaws.com"}},
            },
            {
                # ManageMasterUserPassword: RDS creates and rotates the master password's secret
                # on the caller's behalf, so the caller needs these, but only through RDS
                # (aws:CalledVia) and only on RDS's own secrets (rds!…). Never GetSecretValue:
                # the password stays in the account; the agent's role reads it inside the VPC.
                "Sid": "RdsManagedMasterPasswordSecrets",
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:CreateSecret",
                    "secretsmanager:TagResource",
                    "secretsmanager:RotateSecret",
                ],
                "Resource": "arn:aws:secretsmanager:*:*:secret:rds!*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:CalledVia": "rds.amazonaws.com"}},
            },
            {
                # EKS secrets encryption with the customer's KMS key: the creator of the
                # cluster must see the key and let EKS hold a grant on it (no decrypt here).
                "Sid": "EksSecretsEncryptionKey",
                "Effect": "Allow",
                "Action": "kms:DescribeKey",
                "Resource": "*",
            },
            {
                "Sid": "EksSecretsEncryptionGrant",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }


def agent_secrets_policy(account_id: str, *, substitute: bool = False) -> PolicyDocument:
    """What a compute plane's agent role may read: the account's secrets, nothing else.

    ``account_id`` may be a template variable; ``substitute`` wraps each ARN in CloudFormation's
    ``Fn::Sub`` so ``${AWS::AccountId}`` is filled in by the stack.
    """

    def arn(text: str) -> JsonValue:
        return {"Fn::Sub": text} if substitute else text

    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                # Customers may narrow this (e.g. to secret:lakeplane/* and secret:rds!*);
                # catalogs can then only name secrets within it (docs/cloud-accounts.md).
                "Sid": "ReadSecretsForCatalogs",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": arn(f"arn:aws:secretsmanager:*:{account_id}:secret:*"),
            },
            {
                # Secrets encrypted with a customer key: decrypt only on Secrets Manager's behalf.
                "Sid": "DecryptThroughSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": arn(f"arn:aws:kms:*:{account_id}:key/*"),
                "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
            },
        ],
    }


def render_json(document: Mapping[str, Any]) -> str:
    """Policies and templates as customers see them: stable key order, two-space indent."""
    return json.dumps(document, indent=2) + "\n"
