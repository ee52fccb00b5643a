# The "mysql" catalog type on AWS: an Amazon RDS for MySQL instance of its own,
# encrypted, private, TLS only (require_secure_transport). Its master user is the
# request's user: on an instance of its own, the request's user owns everything there
# is. The database is ssi_<32 hex> as everywhere; the user name is shorter (below).
#
# The password is an in-place change of aws_db_instance (apply_immediately), so a new
# password never replaces the instance.

locals {
  hex        = lower(replace(var.request_id, "-", ""))
  identifier = "ssi-${local.hex}"
  database   = "ssi_${local.hex}"
  # RDS for MySQL allows master user names of at most 16 characters: ssi_<first 12 hex>.
  # The instance is the request's own, so the shorter name cannot clash.
  username = substr("ssi_${local.hex}", 0, 16)

  tags = {
    "ssi:request_id"    = var.request_id
    "ssi:team_id"       = var.team_id
    "ssi:resource_type" = "mysql"
  }
}

resource "aws_db_parameter_group" "this" {
  # A new major version needs a group of the new family: made before the old one goes.
  name        = "${local.identifier}-mysql${replace(var.engine_version, ".", "-")}"
  family      = "mysql${var.engine_version}"
  description = "ssi request ${var.request_id}: TLS only"
  tags        = local.tags

  parameter {
    name  = "require_secure_transport"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "mysql"
  engine_version = var.engine_version
  instance_class = var.instance_class
  port           = 3306

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
