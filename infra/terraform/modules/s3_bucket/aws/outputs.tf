# What the requester gets. The key pair is sensitive: the runner encrypts it.

output "bucket" {
  value       = aws_s3_bucket.this.id
  description = "The bucket's name."
}

output "arn" {
  value       = aws_s3_bucket.this.arn
  description = "The bucket's ARN."
}

output "access_key_id" {
  value       = aws_iam_access_key.this.id
  sensitive   = true
  description = "Access key id of the bucket's IAM user (this bucket only)."
  depends_on  = [aws_iam_user_policy.this]
}

output "secret_access_key" {
  value       = aws_iam_access_key.this.secret
  sensitive   = true
  description = "Secret access key of the bucket's IAM user."
  depends_on  = [aws_iam_user_policy.this]
}
