# What the requester gets. password is sensitive: the runner encrypts it.

output "host" {
  value       = var.host
  description = "Host of the Redis server."
}

output "port" {
  value       = var.port
  description = "Port of the Redis server."
}

output "username" {
  value       = null_resource.user.triggers.username
  description = "The request's ACL user (AUTH username password)."
}

output "key_prefix" {
  value       = null_resource.user.triggers.key_prefix
  description = "Every key the user reads or writes must start with this prefix."
}

output "password" {
  value       = var.password
  sensitive   = true
  description = "The user's password."
  depends_on  = [null_resource.password]
}
