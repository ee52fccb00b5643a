# Variables of the local (simulated) k8s_namespace module: the catalog parameters and the
# context. The simulation directory comes from the environment (SSI_K8S_SIM_DIR).

# ---- catalog parameters (shared/catalog/k8s_namespace.json) -----------------------

variable "cpu_quota" {
  type        = number
  default     = 2
  description = "CPU cores (requests and limits)."
}

variable "memory_quota_gib" {
  type        = number
  default     = 4
  description = "Memory in GiB (requests and limits)."
}

# ---- context, set by the runner for every type ----------------------------------

variable "request_id" {
  type        = string
  description = "The request's id (a UUID). Every name on the engine is derived from it, so names never clash across teams."

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.request_id))
    error_message = "The request_id must be a UUID (8-4-4-4-12 hexadecimal digits)."
  }
}

variable "team_id" {
  type        = string
  description = "The id of the team that owns the request (tags, labels, triggers)."

  validation {
    condition     = length(var.team_id) > 0
    error_message = "The team_id must not be empty."
  }
}

variable "name" {
  type        = string
  description = "The request's name: a DNS label (1-63 of a-z, 0-9 and -, starting and ending with a letter or digit)."

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS label: 1-63 of a-z, 0-9 and -, starting and ending with a letter or digit."
  }
}
