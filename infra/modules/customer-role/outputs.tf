output "role_arn" {
  description = "Paste this into Lakeplane to verify the cloud account."
  value       = aws_iam_role.lakeplane.arn
}

output "agent_secrets_policy_arn" {
  description = "Attached by Lakeplane to each compute plane's agent role."
  value       = aws_iam_policy.agent_secrets.arn
}
