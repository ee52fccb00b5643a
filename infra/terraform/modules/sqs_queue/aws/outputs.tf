# What the requester gets. The key pair is sensitive: the runner encrypts it.

output "queue_url" {
  value       = aws_sqs_queue.this.id
  description = "The queue's URL."
}

output "arn" {
  value       = aws_sqs_queue.this.arn
  description = "The queue's ARN."
}

output "access_key_id" {
  value       = aws_iam_access_key.this.id
  sensitive   = true
  description = "Access key id of the queue's IAM user (this queue and its dead-letter queue only)."
  depends_on  = [aws_iam_user_policy.this]
}

output "secret_access_key" {
  value       = aws_iam_access_key.this.secret
  sensitive   = true
  description = "Secret access key of the queue's IAM user."
  depends_on  = [aws_iam_user_policy.this]
}
