# What the requester gets. password and uri are sensitive: the runner encrypts them.

output "host" {
  value       = aws_db_instance.this.address
  description = "Host name of the instance."
}

output "port" {
  value       = aws_db_instance.this.port
  description = "Port of the instance."
}

output "database" {
  value       = aws_db_instance.this.name
  description = "The request's database."
}

output "username" {
  value       = aws_db_instance.this.username
  description = "The request's user (the instance's master user)."
}

output "password" {
  value       = var.password
  sensitive   = true
  description = "The user's password."
  depends_on  = [aws_db_instance.this]
}

output "uri" {
  value       = "mysql://${urlencode(aws_db_instance.this.username)}:${urlencode(var.password)}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${urlencode(aws_db_instance.this.name)}"
  sensitive   = true
  description = "mysql://user:password@host:port/database"
}
