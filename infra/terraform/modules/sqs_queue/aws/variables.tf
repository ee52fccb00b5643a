# Variables of the sqs_queue module (AWS; applied as is against moto on the local stack):
# the catalog parameters, the context, and the encryption key.

# ---- catalog parameters (shared/catalog/sqs_queue.json) ---------------------------

variable "fifo" {
  type        = bool
  default     = false
  description = "A FIFO queue (name ending in .fifo)."
}

variable "visibility_timeout_seconds" {
  type        = number
  default     = 30
  description = "Visibility timeout of received messages, in seconds."
}

variable "message_retention_days" {
  type        = number
  default     = 4
  description = "How long a message is kept, in days."
}

variable "dead_letter_max_receives" {
  type        = number
  default     = null
  description = "Move a message to a dead-letter queue after this many receives; null: no dead-letter queue."
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

# ---- infrastructure settings ------------------------------------------------------

variable "kms_master_key_id" {
  type        = string
  default     = "alias/aws/sqs"
  description = "KMS key that encrypts the messages (default: the AWS managed key of SQS)."
}
