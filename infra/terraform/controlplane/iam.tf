# The principal customers trust: their cross-account role (infra/modules/customer-role) names
# this role's ARN as vendor_principal and requires the external ID Lakeplane generated for them.
# Its ARN is LAKEPLANE_VENDOR_PRINCIPAL in the production overlay. Web and worker pods run as
# it through EKS Pod Identity; it may assume customer roles and nothing else of note.
resource "aws_iam_role" "controlplane" {
  name                 = "${local.name}-controlplane"
  description          = "Lakeplane control plane: assumes customer roles with their external IDs."
  max_session_duration = 3600
  assume_role_policy   = data.aws_iam_policy_document.controlplane_trust.json
}

data "aws_iam_policy_document" "controlplane_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "controlplane" {
  statement {
    sid     = "AssumeCustomerRoles"
    actions = ["sts:AssumeRole"]
    # Customer roles live under the path the onboarding template creates them in.
    resources = ["arn:${local.partition}:iam::*:role/lakeplane-access/*"]
  }

  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "ArtifactsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.controlplane.arn]
  }

  statement {
    sid       = "MarketplaceMetering"
    actions   = ["aws-marketplace:BatchMeterUsage", "aws-marketplace:ResolveCustomer"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "controlplane" {
  name   = "lakeplane-controlplane"
  role   = aws_iam_role.controlplane.id
  policy = data.aws_iam_policy_document.controlplane.json
}

# The service account of infra/controlplane/base/serviceaccount.yaml.
resource "aws_eks_pod_identity_association" "controlplane" {
  cluster_name    = aws_eks_cluster.this.name
  namespace       = "lakeplane"
  service_account = "lakeplane-controlplane"
  role_arn        = aws_iam_role.controlplane.arn
}
