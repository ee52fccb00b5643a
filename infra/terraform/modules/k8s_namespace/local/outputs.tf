# What the requester gets (simulated: see main.tf).

output "namespace" {
  value       = null_resource.quota.triggers.namespace
  description = "The namespace."
}
