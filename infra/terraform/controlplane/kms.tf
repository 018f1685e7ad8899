# One customer-managed key for the control plane's data at rest: RDS, Redis, S3, EKS secrets,
# logs. Rotated yearly by KMS.
resource "aws_kms_key" "controlplane" {
  description             = "${local.name}: control plane data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "controlplane" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.controlplane.key_id
}

data "aws_iam_policy_document" "kms" {
  # In a key policy "*" is this key alone, and the account must administer its own key, or the
  # key becomes unmanageable; the statements below are AWS's documented default key policy.
  #checkov:skip=CKV_AWS_111:a key policy's Resource "*" means this key only
  #checkov:skip=CKV_AWS_356:a key policy's Resource "*" means this key only
  #checkov:skip=CKV_AWS_109:the account root must keep administering the key (AWS default key policy)
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}
