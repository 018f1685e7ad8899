variable "vendor_principal" {
  description = "ARN of the Lakeplane control plane principal allowed to assume the role (shown in the Lakeplane console)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/[A-Za-z0-9+=,.@_/-]+)$", var.vendor_principal))
    error_message = "vendor_principal must be an IAM role or account-root ARN."
  }
}

variable "external_id" {
  description = "The external ID Lakeplane generated for this cloud account."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]{32,64}$", var.external_id))
    error_message = "external_id must be 32 to 64 letters and digits, exactly as Lakeplane shows it."
  }
}

variable "tenant_tag" {
  description = "Your Lakeplane organization, recorded as the lakeplane:org tag on the role."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Prefix of the role's name; Terraform appends a unique suffix."
  type        = string
  default     = "lakeplane-"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,38}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 38 characters valid in an IAM role name."
  }
}
