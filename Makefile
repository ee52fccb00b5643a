# Two commands: `make run` (the API on http://127.0.0.1:3000 with DynamoDB Local) and
# `make test` (format, lint, template check, all tests). The work is in scripts/.

.DEFAULT_GOAL := help
.PHONY: help run test build bench tf-check tf-smoke fuzz

help: ## list the targets
	@grep -E '^[a-z-]+: ##' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+): ## /  make \1\t/'

run: ## build and run the dev server against DynamoDB Local (Ctrl-C stops both)
	@bash scripts/run.sh

test: ## cargo fmt --check, clippy -D warnings, template check, cargo test against DynamoDB Local
	@bash scripts/test.sh

build: ## build every function for AWS (arm64 zips under target/lambda/) and print their sizes
	@bash scripts/build.sh

bench: ## release builds, then latency, init, memory, load and micro-benchmarks, each beside its target
	@bash scripts/bench.sh

tf-check: ## Terraform modules: fmt -check, interface = catalog, init + validate (offline)
	@bash scripts/tf-check.sh

tf-smoke: ## Terraform modules: apply, check, rotate, destroy each type against local engines and moto
	@bash scripts/tf-smoke.sh

fuzz: ## Schemathesis against a fresh local stack, as an admin, a few minutes at most
	@bash scripts/fuzz.sh
