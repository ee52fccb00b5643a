"""Checks that every Terraform module has exactly the interface the runner relies on
(infra/terraform/README.md): called by scripts/tf-check.sh.

- variables: every catalog parameter of the type (shared/catalog/<type>.json), same
  name, string->string, integer/number->number, boolean->bool, the catalog default (or
  null); request_id, team_id, name; password (sensitive) for postgres, mysql, redis;
  host and port for their local modules; nothing else, except the documented
  infrastructure variables (with defaults) of the AWS modules;
- outputs: exactly the contract's, with the contract's sensitivity;
- no provider and no backend block.
"""

import glob
import json
import os
import re
import sys

CONTEXT = ("request_id", "team_id", "name")
WITH_PASSWORD = {"postgres", "mysql", "redis"}
AWS_EXTRA = {
    "postgres": {"db_subnet_group_name", "vpc_security_group_ids", "backup_retention_days", "skip_final_snapshot"},
    "mysql": {"db_subnet_group_name", "vpc_security_group_ids", "backup_retention_days", "skip_final_snapshot"},
    "redis": {"subnet_group_name", "security_group_ids", "parameter_group_name", "snapshot_retention_days"},
    "s3_bucket": {"force_destroy"},
    "sqs_queue": {"kms_master_key_id"},
    "k8s_namespace": set(),
}
OUTPUTS = {  # (non-sensitive, sensitive)
    "postgres": ({"host", "port", "database", "username"}, {"password", "uri"}),
    "mysql": ({"host", "port", "database", "username"}, {"password", "uri"}),
    "redis": ({"host", "port", "username", "key_prefix"}, {"password"}),
    "s3_bucket": ({"bucket", "arn"}, {"access_key_id", "secret_access_key"}),
    "sqs_queue": ({"queue_url", "arn"}, {"access_key_id", "secret_access_key"}),
    "k8s_namespace": ({"namespace"}, set()),
}
TF_TYPE = {"string": "string", "integer": "number", "number": "number", "boolean": "bool"}


def blocks(text, kind):
    """{name: body} of every top-level `kind "name" {...}` block (braces balanced)."""
    out = {}
    for m in re.finditer(r'^%s "([^"]+)" \{' % kind, text, re.M):
        depth, i = 0, m.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        out[m.group(1)] = text[m.end():i - 1]
    return out


def attr(body, key):
    m = re.search(r"^  %s\s*=\s*(.+)$" % key, body, re.M)
    return m.group(1).strip() if m else None


def check(root, moddir):
    typ, variant = moddir.rstrip("/").split("/")[-2:]
    bad = []
    cat = json.load(open(os.path.join(root, "shared/catalog", typ + ".json")))["parameters"]["properties"]
    want = {k: (TF_TYPE[v["type"]], json.dumps(v["default"]) if "default" in v else "null") for k, v in cat.items()}
    for k in CONTEXT:
        want[k] = ("string", None)
    if typ in WITH_PASSWORD:
        want["password"] = ("string", None)
        if variant == "local":
            want["host"], want["port"] = ("string", None), ("number", None)
    extras = AWS_EXTRA[typ] if variant == "aws" else set()
    text = "".join(open(f).read() for f in sorted(glob.glob(os.path.join(moddir, "*.tf"))))
    have = blocks(text, "variable")
    for k in sorted(set(have) - set(want) - extras):
        bad.append(f"variable {k} is neither a catalog parameter nor part of the interface")
    for k in sorted(set(want) - set(have)):
        bad.append(f"variable {k} is missing")
    for k, (t, default) in want.items():
        if k not in have:
            continue
        if attr(have[k], "type") != t:
            bad.append(f"variable {k} has type {attr(have[k], 'type')}, want {t}")
        if attr(have[k], "default") != default:
            bad.append(f"variable {k} has default {attr(have[k], 'default')}, want {default}")
    for k in set(have) & extras:
        if attr(have[k], "default") is None:
            bad.append(f"infrastructure variable {k} needs a default")
    if "password" in have and attr(have["password"], "sensitive") != "true":
        bad.append("variable password must be sensitive")
    outs = blocks(text, "output")
    plain, secret = OUTPUTS[typ]
    if set(outs) != plain | secret:
        bad.append(f"outputs {sorted(outs)}, want {sorted(plain | secret)}")
    for k, body in outs.items():
        if (attr(body, "sensitive") == "true") != (k in secret):
            bad.append(f"output {k} must {'' if k in secret else 'not '}be sensitive")
    if re.search(r'^provider\b|^\s+backend\s+"', text, re.M):
        bad.append("has a provider or backend block")
    return f"{typ}/{variant}", bad


def main():
    root = sys.argv[1]
    failed = False
    for d in sorted(glob.glob(os.path.join(root, "infra/terraform/modules/*/*/"))):
        where, bad = check(root, d)
        print(("FAIL " if bad else "ok   ") + where)
        for b in bad:
            print("     " + b)
        failed |= bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
