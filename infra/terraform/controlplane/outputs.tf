output "vendor_principal" {
  description = "LAKEPLANE_VENDOR_PRINCIPAL: the ARN customers' roles trust (with their external ID)."
  value       = aws_iam_role.controlplane.arn
}

output "eks_cluster_name" {
  description = "Deploy infra/controlplane/overlays/production here."
  value       = aws_eks_cluster.this.name
}

output "database_endpoint" {
  description = "Host of DATABASE_URL (PostgreSQL, Multi-AZ); the password is in master_user_secret."
  value       = aws_db_instance.this.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret RDS manages for the master user."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "redis_endpoint" {
  description = "Host of CELERY_BROKER_URL (rediss://, TLS); the auth token is in redis_auth_secret_arn."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret holding the Redis auth token."
  value       = aws_secretsmanager_secret.redis_auth.arn
}

output "artifacts_bucket" {
  description = "S3 bucket for agent bundles, templates and statement PDFs."
  value       = aws_s3_bucket.artifacts.bucket
}

output "kms_key_arn" {
  description = "The control plane's key for data at rest."
  value       = aws_kms_key.controlplane.arn
}
