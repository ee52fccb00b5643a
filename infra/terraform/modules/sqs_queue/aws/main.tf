# The "sqs_queue" catalog type: an encrypted SQS queue, optionally FIFO, with an optional
# dead-letter queue, and an IAM user whose access key can use these queues and nothing
# else. The same module runs against AWS and, on the local stack, against moto (the
# runner's provider.tf.json points the aws provider at it); there is no local module.

locals {
  hex    = lower(replace(var.request_id, "-", ""))
  suffix = var.fifo ? ".fifo" : ""
  # ssi-<name>-<first 8 hex of request_id>[.fifo], at most 80 characters even for the
  # dead-letter queue (-dlq): a long name is cut (a hyphen left at the cut dropped).
  base       = "ssi-${replace(substr(var.name, 0, 58), "/-+$/", "")}-${substr(local.hex, 0, 8)}"
  queue_name = "${local.base}${local.suffix}"
  dlq_name   = "${local.base}-dlq${local.suffix}"
  with_dlq   = var.dead_letter_max_receives != null

  tags = {
    "ssi:request_id"    = var.request_id
    "ssi:team_id"       = var.team_id
    "ssi:resource_type" = "sqs_queue"
  }
}

resource "aws_sqs_queue" "dead_letter" {
  count                     = local.with_dlq ? 1 : 0
  name                      = local.dlq_name
  fifo_queue                = var.fifo
  message_retention_seconds = 1209600 # 14 days, the maximum
  kms_master_key_id         = var.kms_master_key_id
  tags                      = local.tags
}

resource "aws_sqs_queue" "this" {
  name                       = local.queue_name
  fifo_queue                 = var.fifo
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_days * 86400
  kms_master_key_id          = var.kms_master_key_id
  tags                       = local.tags

  redrive_policy = local.with_dlq ? jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[0].arn
    maxReceiveCount     = var.dead_letter_max_receives
  }) : null
}

# The queue's only access key: an IAM user of its own, allowed on these queues only.
resource "aws_iam_user" "this" {
  name          = "ssi-sqs-${local.hex}"
  path          = "/ssi/"
  force_destroy = true
  tags          = local.tags
}

resource "aws_iam_user_policy" "this" {
  name = "queue-access"
  user = aws_iam_user.this.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "Queues"
        Effect = "Allow"
        Action = [
          "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:PurgeQueue",
        ]
        Resource = concat([aws_sqs_queue.this.arn], aws_sqs_queue.dead_letter[*].arn)
      },
    ]
  })
}

resource "aws_iam_access_key" "this" {
  user = aws_iam_user.this.name
}
