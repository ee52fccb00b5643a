# Local implementation of the "k8s_namespace" catalog type: a SIMULATION.
#
# No Kubernetes cluster can run on the local stack (no containers, no Docker), so this
# module does not create a namespace anywhere. It writes the manifests that the real
# module (../aws, kubernetes provider) would apply, a Namespace and its ResourceQuota,
# to $SSI_K8S_SIM_DIR/<namespace>.yaml, and removes that file on destroy. That is enough
# to exercise the whole pipeline (plan, apply, outputs, re-apply, destroy) and to look
# at the result; it proves nothing about a cluster.
#
# SSI_K8S_SIM_DIR is the environment of the terraform process, set by the runner.

locals {
  hex = lower(replace(var.request_id, "-", ""))
  # <name>-<first 8 hex of request_id>, at most 63 characters: a long name is cut (and
  # a hyphen left at the cut dropped) so that the suffix always fits.
  namespace = "${replace(substr(var.name, 0, 54), "/-+$/", "")}-${substr(local.hex, 0, 8)}"

  labels = {
    "ssi/request_id"    = var.request_id
    "ssi/team_id"       = var.team_id
    "ssi/resource_type" = "k8s_namespace"
  }

  manifest = join("---\n", [
    yamlencode({
      apiVersion = "v1"
      kind       = "Namespace"
      metadata   = { name = local.namespace, labels = local.labels }
    }),
    yamlencode({
      apiVersion = "v1"
      kind       = "ResourceQuota"
      metadata   = { name = "ssi-quota", namespace = local.namespace, labels = local.labels }
      spec = {
        hard = {
          "requests.cpu"    = tostring(var.cpu_quota)
          "limits.cpu"      = tostring(var.cpu_quota)
          "requests.memory" = "${var.memory_quota_gib}Gi"
          "limits.memory"   = "${var.memory_quota_gib}Gi"
        }
      }
    }),
  ])
}

# The namespace. Destroy removes the simulated namespace (its file); may be gone already.
resource "null_resource" "namespace" {
  triggers = {
    request_id    = var.request_id
    team_id       = var.team_id
    resource_type = "k8s_namespace"
    namespace     = local.namespace
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      : "$${SSI_K8S_SIM_DIR:?SSI_K8S_SIM_DIR (the simulated cluster directory) is not set}"
      mkdir -p "$SSI_K8S_SIM_DIR"
    EOT
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["bash", "-c"]
    environment = {
      SSI_NAMESPACE = self.triggers.namespace
    }
    command = <<-EOT
      set -euo pipefail
      : "$${SSI_K8S_SIM_DIR:?SSI_K8S_SIM_DIR (the simulated cluster directory) is not set}"
      rm -f -- "$SSI_K8S_SIM_DIR/$SSI_NAMESPACE.yaml"
      echo "simulated: deleted namespace $SSI_NAMESPACE"
    EOT
  }
}

# The manifests (Namespace + ResourceQuota), apart: a new quota rewrites the file and
# leaves the namespace resource alone, as a quota change would on a cluster.
resource "null_resource" "quota" {
  triggers = {
    request_id      = var.request_id
    team_id         = var.team_id
    resource_type   = "k8s_namespace"
    namespace       = null_resource.namespace.triggers.namespace
    manifest_sha256 = sha256(local.manifest)
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_NAMESPACE = self.triggers.namespace
      SSI_MANIFEST  = "# SIMULATED by infra/terraform/modules/k8s_namespace/local: no cluster runs on the local stack.\n${local.manifest}"
    }
    command = <<-EOT
      set -euo pipefail
      : "$${SSI_K8S_SIM_DIR:?SSI_K8S_SIM_DIR (the simulated cluster directory) is not set}"
      mkdir -p "$SSI_K8S_SIM_DIR"
      tmp=$(mktemp "$SSI_K8S_SIM_DIR/.$SSI_NAMESPACE.XXXXXX")
      printf '%s' "$SSI_MANIFEST" >"$tmp"
      mv -f -- "$tmp" "$SSI_K8S_SIM_DIR/$SSI_NAMESPACE.yaml"
      echo "simulated: applied namespace $SSI_NAMESPACE and its resource quota"
    EOT
  }
}
