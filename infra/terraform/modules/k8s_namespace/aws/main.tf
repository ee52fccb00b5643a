# The "k8s_namespace" catalog type on the shared cluster (e.g. Amazon EKS): a namespace
# with a ResourceQuota, through the kubernetes provider. The runner's provider.tf.json
# points the kubernetes provider at the cluster.
#
# The kubernetes provider is not in the offline provider mirror, so on the local stack
# this module is only format-checked (scripts/tf-check.sh), never initialised or
# applied; ../local simulates it.

locals {
  hex = lower(replace(var.request_id, "-", ""))
  # <name>-<first 8 hex of request_id>, at most 63 characters (see ../local).
  namespace = "${replace(substr(var.name, 0, 54), "/-+$/", "")}-${substr(local.hex, 0, 8)}"

  labels = {
    "ssi/request_id"    = var.request_id
    "ssi/team_id"       = var.team_id
    "ssi/resource_type" = "k8s_namespace"
  }
}

resource "kubernetes_namespace" "this" {
  metadata {
    name   = local.namespace
    labels = local.labels
  }
}

resource "kubernetes_resource_quota" "this" {
  metadata {
    name      = "ssi-quota"
    namespace = kubernetes_namespace.this.metadata[0].name
    labels    = local.labels
  }

  spec {
    hard = {
      "requests.cpu"    = tostring(var.cpu_quota)
      "limits.cpu"      = tostring(var.cpu_quota)
      "requests.memory" = "${var.memory_quota_gib}Gi"
      "limits.memory"   = "${var.memory_quota_gib}Gi"
    }
  }
}
