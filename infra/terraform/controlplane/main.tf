# Lakeplane's own AWS account: the SaaS control plane (docs/runbook.md, "Infrastructure").
# Customers' compute planes live in their accounts; nothing here reaches customer data.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "lakeplane-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(var.availability_zones, 0, 3)
  # /20 private subnets for nodes and data stores, /24 public ones for the load balancer and NAT.
  private_cidrs = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_cidrs  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 200 + i)]
}
