# The "redis" catalog type on AWS: an Amazon ElastiCache for Redis replication group of
# its own (primary + var.replicas read replicas), encrypted at rest and in transit, with
# var.password as its AUTH token.
#
# Limits of the pinned provider (hashicorp/aws 3.39.0), said plainly:
# - It has no aws_elasticache_user / user group (RBAC), so the user is Redis' `default`
#   user with the AUTH token; `username` is "default". The key prefix ssi_<32 hex>: is
#   given out as on the local engine, as a convention (the group is the request's own).
# - auth_token cannot be changed in place (the provider replaces the whole group, i.e.
#   loses the data), so changes to it are ignored and the `password` output is the token
#   the group really has (from the state). Rotating it needs a newer provider
#   (auth_token_update_strategy) or ModifyReplicationGroup with AuthTokenUpdateStrategy.

locals {
  hex        = lower(replace(var.request_id, "-", ""))
  group_id   = "ssi-${local.hex}" # 36 characters; the limit is 40
  key_prefix = "ssi_${local.hex}:"

  tags = {
    "ssi:request_id"    = var.request_id
    "ssi:team_id"       = var.team_id
    "ssi:resource_type" = "redis"
  }
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id          = local.group_id
  replication_group_description = "ssi request ${var.request_id} (team ${var.team_id})"
  engine                        = "redis"
  engine_version                = var.engine_version
  node_type                     = var.node_type
  port                          = 6379
  number_cache_clusters         = var.replicas + 1
  automatic_failover_enabled    = var.replicas > 0
  multi_az_enabled              = var.replicas > 0
  parameter_group_name          = var.parameter_group_name
  subnet_group_name             = var.subnet_group_name
  security_group_ids            = var.security_group_ids

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.password

  snapshot_retention_limit = var.snapshot_retention_days
  apply_immediately        = true
  tags                     = local.tags

  lifecycle {
    ignore_changes = [auth_token]
  }
}
