# No provider block and no backend block: the runner writes provider.tf.json and
# backend.tf.json into the rendered working directory.
terraform {
  required_version = ">= 1.0"

  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}
