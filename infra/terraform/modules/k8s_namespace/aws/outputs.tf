# What the requester gets.

output "namespace" {
  value       = kubernetes_namespace.this.metadata[0].name
  description = "The namespace."
}
