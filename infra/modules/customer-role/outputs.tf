output "role_arn" {
  description = "Paste this into Lakeplane to verify the cloud account."
  value       = aws_iam_role.lakeplane.arn
}
