# What the requester gets. password is sensitive: the runner encrypts it.

output "host" {
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
  description = "Primary endpoint (TLS)."
}

output "port" {
  value       = aws_elasticache_replication_group.this.port
  description = "Port."
}

output "username" {
  value       = "default"
  description = "Redis user (the provider has no ElastiCache RBAC users: see main.tf)."
}

output "key_prefix" {
  value       = local.key_prefix
  description = "Prefix for the request's keys (a convention on a group of its own)."
}

output "password" {
  value       = aws_elasticache_replication_group.this.auth_token
  sensitive   = true
  description = "The AUTH token the group has (changes of var.password are ignored: see main.tf)."
}
