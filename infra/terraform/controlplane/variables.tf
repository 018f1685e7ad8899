variable "region" {
  description = "AWS region of the control plane."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Name of this installation (production, staging, ...); part of every resource name."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment must be 2-21 lowercase letters, digits or dashes."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the control plane's VPC (/16 recommended)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Three availability zones: RDS Multi-AZ, Redis replicas and EKS nodes spread over them."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "At least two availability zones are needed for Multi-AZ."
  }
}

variable "eks_version" {
  description = "Kubernetes version of the control plane's EKS cluster."
  type        = string
  default     = "1.32"
}

variable "eks_admin_cidrs" {
  description = "CIDRs allowed to reach the EKS API (VPN or bastion). The endpoint is private otherwise."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the node group running web, workers and beat."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "node_count" {
  description = "Desired, minimum and maximum nodes."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 3, min = 3, max = 9 }
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage; autoscaling grows it up to ten times this."
  type        = number
  default     = 100
}

variable "db_backup_retention_days" {
  description = "Point-in-time recovery window (docs/runbook.md: restore)."
  type        = number
  default     = 14
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Celery broker and cache."
  type        = string
  default     = "cache.m7g.large"
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs and EKS control plane logs."
  type        = number
  default     = 365
}
