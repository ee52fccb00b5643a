# Every provider the modules use, at the versions they pin: the runner image mirrors
# exactly these (`terraform providers mirror`), checked against .terraform.lock.hcl.
# Locally the same versions come from PyPI packages (scripts/provision-tools.sh).
terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "3.39.0"
    }
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}
