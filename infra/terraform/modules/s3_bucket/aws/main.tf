# The "s3_bucket" catalog type: a private S3 bucket (public access blocked, objects
# encrypted with SSE-S3) and an IAM user whose access key can use this bucket only.
# The same module runs against AWS and, on the local stack, against moto (the runner's
# provider.tf.json points the aws provider at it); there is no separate local module.

locals {
  hex = lower(replace(var.request_id, "-", ""))
  # ssi-<name>-<first 8 hex of request_id>, at most 63 characters: a long name is cut
  # (and a hyphen left at the cut dropped) so that the suffix always fits.
  bucket = "ssi-${replace(substr(var.name, 0, 50), "/-+$/", "")}-${substr(local.hex, 0, 8)}"

  tags = {
    "ssi:request_id"    = var.request_id
    "ssi:team_id"       = var.team_id
    "ssi:resource_type" = "s3_bucket"
  }
}

resource "aws_s3_bucket" "this" {
  bucket        = local.bucket
  acl           = "private"
  force_destroy = var.force_destroy
  tags          = local.tags

  versioning {
    enabled = var.versioning
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = "AES256"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.lifecycle_days == null ? [] : [var.lifecycle_days]
    content {
      id      = "ssi-expire"
      enabled = true

      expiration {
        days = lifecycle_rule.value
      }

      noncurrent_version_expiration {
        days = lifecycle_rule.value
      }

      abort_incomplete_multipart_upload_days = 7
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# The bucket's only access key: an IAM user of its own, allowed on this bucket only.
resource "aws_iam_user" "this" {
  name          = "ssi-s3-${local.hex}"
  path          = "/ssi/"
  force_destroy = true
  tags          = local.tags
}

resource "aws_iam_user_policy" "this" {
  name = "bucket-access"
  user = aws_iam_user.this.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Bucket"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"]
        Resource = [aws_s3_bucket.this.arn]
      },
      {
        Sid      = "Objects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        Resource = ["${aws_s3_bucket.this.arn}/*"]
      },
    ]
  })
}

resource "aws_iam_access_key" "this" {
  user = aws_iam_user.this.name
}
