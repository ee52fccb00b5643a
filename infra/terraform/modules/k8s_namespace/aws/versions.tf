# No provider block and no backend block: the runner writes provider.tf.json (the
# kubernetes provider pointed at the team cluster, e.g. EKS) and backend.tf.json into the
# rendered working directory. The kubernetes provider is not in the offline mirror, so
# this module is only format-checked here, never initialised (see README.md).
terraform {
  required_version = ">= 1.0"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "2.3.2"
    }
  }
}
