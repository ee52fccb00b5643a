# What the requester gets. password and uri are sensitive: the runner encrypts them.

output "host" {
  value       = var.host
  description = "Host of the MySQL (MariaDB) server."
}

output "port" {
  value       = var.port
  description = "Port of the MySQL (MariaDB) server."
}

output "database" {
  value       = null_resource.database.triggers.database
  description = "The request's database."
}

output "username" {
  value       = null_resource.database.triggers.username
  description = "The request's user (ALL PRIVILEGES on its database, nothing else)."
}

output "password" {
  value       = var.password
  sensitive   = true
  description = "The user's password."
  depends_on  = [null_resource.password]
}

output "uri" {
  value       = "mysql://${urlencode(null_resource.database.triggers.username)}:${urlencode(var.password)}@${var.host}:${var.port}/${urlencode(null_resource.database.triggers.database)}"
  sensitive   = true
  description = "mysql://user:password@host:port/database"
  depends_on  = [null_resource.password]
}
