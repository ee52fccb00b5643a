# The "postgres" catalog type on AWS: an Amazon RDS for PostgreSQL instance of its own,
# encrypted, private, TLS only (rds.force_ssl). Its master user is the request's user:
# on an instance of its own, the request's user owns everything there is.
#
# The password is an in-place change of aws_db_instance (apply_immediately), so a new
# password never replaces the instance.

locals {
  hex        = lower(replace(var.request_id, "-", ""))
  identifier = "ssi-${local.hex}"
  database   = "ssi_${local.hex}"
  username   = "ssi_${local.hex}"

  tags = {
    "ssi:request_id"    = var.request_id
    "ssi:team_id"       = var.team_id
    "ssi:resource_type" = "postgres"
  }
}

resource "aws_db_parameter_group" "this" {
  # A new major version needs a group of the new family: made before the old one goes.
  name        = "${local.identifier}-pg${var.engine_version}"
  family      = "postgres${var.engine_version}"
  description = "ssi request ${var.request_id}: TLS only"
  tags        = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  port           = 5432

  allocated_storage = var.storage_gb
  storage_type      = "gp2"
  storage_encrypted = true
  multi_az          = var.multi_az

  name     = local.database
  username = local.username
  password = var.password

  parameter_group_name   = aws_db_parameter_group.this.name
  db_subnet_group_name   = var.db_subnet_group_name
  vpc_security_group_ids = var.vpc_security_group_ids
  publicly_accessible    = false

  backup_retention_period     = var.backup_retention_days
  copy_tags_to_snapshot       = true
  skip_final_snapshot         = var.skip_final_snapshot
  final_snapshot_identifier   = var.skip_final_snapshot ? null : "${local.identifier}-final"
  deletion_protection         = false
  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = true
  apply_immediately           = true

  tags = local.tags
}
