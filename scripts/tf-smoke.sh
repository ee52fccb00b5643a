#!/usr/bin/env bash
# End-to-end smoke test of the Terraform modules against real local engines, the way
# the runner drives them. It installs what it needs (scripts/provision-tools.sh), starts
# PostgreSQL, MariaDB, Redis and moto on free ports, and for each of the six catalog
# types renders a working directory as the runner does (the module's files, a
# provider.tf.json for the aws provider pointed at moto where used, a backend.tf.json
# with a local state in a temporary directory, terraform.tfvars.json mode 0600 with a
# random password), then:
#   init -plugin-dir, plan -out, apply the plan, output -json, checks that it really
#   works (the generated credentials log in and can use their own database / keys /
#   bucket / queue and nothing of another request), a second request where isolation
#   matters, a re-apply (plan shows no changes, apply changes nothing), a re-apply with
#   an empty state (as after a runner killed mid-apply: creation must converge), a
#   password change (the old one stops working, the data survives) or a parameter
#   change, apply -destroy with checks that everything is gone, and a second destroy.
# Credentials reach the clients through the environment only (PGPASSWORD, MYSQL_PWD,
# REDISCLI_AUTH, boto3 reading the output file). The clients run through shims that
# record their command lines; at the end no log, no recorded command line and no
# terraform output may contain a generated password.
#
# Prints one PASS/FAIL line per type and exits non-zero on any failure. Stops every
# engine it started (by PID) on exit. Usage:
#   bash scripts/tf-smoke.sh [TYPE ...]       # default: all six
#   KEEP=1 bash scripts/tf-smoke.sh           # keep the work directory (it holds secrets)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/provision-tools.sh
. "$ROOT/scripts/provision-tools.sh"

ALL_TYPES=(postgres mysql redis s3_bucket sqs_queue k8s_namespace)
TYPES=("$@")
((${#TYPES[@]})) || TYPES=("${ALL_TYPES[@]}")
for t in "${TYPES[@]}"; do
    [[ " ${ALL_TYPES[*]} " == *" $t "* ]] || {
        echo "tf-smoke: unknown type '$t' (${ALL_TYPES[*]})" >&2
        exit 2
    }
done

WORK=
cleanup() {
    pt_stop_all
    if [[ -n $WORK ]]; then
        if [[ ${KEEP:-} == 1 ]]; then
            echo "tf-smoke: kept $WORK (it holds credentials: remove it)" >&2
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tf-smoke.XXXXXX")
SECRETS="$WORK/secrets" # every generated secret, one per line (checked against the logs)
: >"$SECRETS"

pt_install

echo "== engines"
t0=$(date +%s%N)
pt_start_postgres "$(pt_free_port)"
pt_start_mariadb "$(pt_free_port)"
pt_start_redis "$(pt_free_port)"
pt_start_moto "$(pt_free_port)"
t1=$(date +%s%N)
echo "engines started in $(((t1 - t0) / 1000000)) ms"
export SSI_K8S_SIM_DIR="$WORK/k8s-sim"
pt_env
ADMIN_SECRETS=("$PGPASSWORD" "$MYSQL_PWD" "$REDISCLI_AUTH" "$AWS_SECRET_ACCESS_KEY")

# Shims in front of the clients: they record every command line (argv), then exec the
# real client with the same standard input.
SHIMS="$WORK/shims"
ARGV_LOG="$WORK/argv.log"
mkdir -p "$SHIMS"
: >"$ARGV_LOG"
for c in psql mariadb mysql redis-cli sha256sum; do
    real=$(command -v "$c")
    printf '#!/bin/sh\nprintf "%%s\\n" "%s $*" >>"%s"\nexec "%s" "$@"\n' "$c" "$ARGV_LOG" "$real" >"$SHIMS/$c"
    chmod 0755 "$SHIMS/$c"
done
export PATH="$SHIMS:$PATH"

# ---------------------------------------------------------------- helpers

uuid() { local u; read -r u </proc/sys/kernel/random/uuid && printf '%s' "$u"; }
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
# A password with the characters that break naive quoting (' " \ $ ; `), plus 24 random
# hex characters; recorded in $SECRETS.
new_password() {
    local p
    p="Q'\"\\\$;\`$(hex 12)x"
    printf '%s\n' "$p" >>"$SECRETS"
    printf '%s' "$p"
}

# render TYPE VARIANT DIR: a working directory as the runner makes it.
render() {
    local type=$1 variant=$2 dir=$3
    mkdir -p "$dir" "$dir.state"
    cp "$ROOT/infra/terraform/modules/$type/$variant/"*.tf "$dir/"
    jq -n --arg path "$dir.state/terraform.tfstate" '{terraform: {backend: {local: {path: $path}}}}' >"$dir/backend.tf.json"
    if [[ $type == s3_bucket || $type == sqs_queue ]]; then
        pt_aws_provider_json "$SSI_AWS_ENDPOINT" >"$dir/provider.tf.json"
    fi
}

# tfvars DIR JSON: write terraform.tfvars.json (mode 0600).
tfvars() { (umask 077 && printf '%s\n' "$2" >"$1/terraform.tfvars.json"); }

# tf DIR ARGS...: run terraform in DIR, appending its output to $LOG.
tf() {
    local dir=$1
    shift
    printf '\n$ terraform %s\n' "$*" >>"$LOG"
    (cd "$dir" && terraform "$@" -no-color) >>"$LOG" 2>&1
}

fail() {
    echo "     FAIL: $*" >&2
    exit 1
}
step() { printf '     - %s\n' "$*"; }

# provision DIR: init, plan -out, apply the plan, output -json into DIR/out.json.
provision() {
    local dir=$1
    tf "$dir" init -input=false -plugin-dir="$SSI_TF_PLUGIN_DIR" || fail "terraform init"
    tf "$dir" plan -input=false -out=plan.bin || fail "terraform plan"
    tf "$dir" apply -input=false plan.bin || fail "terraform apply"
    rm -f "$dir/plan.bin"
    (cd "$dir" && terraform output -json -no-color) >"$dir/out.json" 2>>"$LOG" || fail "terraform output"
}
out() { jq -er --arg k "$2" '.[$k].value' "$1/out.json"; }

# reapply DIR: the plan must be empty, the apply must change nothing.
reapply() {
    local dir=$1 rc=0
    tf "$dir" plan -input=false -detailed-exitcode || rc=$?
    ((rc == 0)) || fail "re-plan is not empty (exit $rc); see the log"
    tf "$dir" apply -input=false -auto-approve || fail "re-apply"
    tail -n 20 "$LOG" | grep -q 'Resources: 0 added, 0 changed, 0 destroyed' || fail "re-apply changed something"
}

# converge TYPE VARIANT DIR: apply the same variables with an empty state (what a runner
# killed between creating and recording a resource leaves behind); then drop that state.
converge() {
    local type=$1 variant=$2 dir=$3
    render "$type" "$variant" "$dir.again"
    cp "$dir/terraform.tfvars.json" "$dir.again/"
    tf "$dir.again" init -input=false -plugin-dir="$SSI_TF_PLUGIN_DIR" || fail "init (empty state)"
    tf "$dir.again" apply -input=false -auto-approve || fail "apply over existing objects with an empty state"
    rm -rf "$dir.again" "$dir.again.state"
}

destroy_twice() {
    local dir=$1
    tf "$dir" apply -input=false -auto-approve -destroy || fail "destroy"
    tf "$dir" apply -input=false -auto-approve -destroy || fail "second destroy"
}

# As the request's user (credentials in the environment only).
pg_as() { PGUSER=$1 PGPASSWORD=$2 PGDATABASE=$3 psql -X -q -At -v ON_ERROR_STOP=1 "${@:4}"; }
pg_admin() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
my_as() { MYSQL_PWD=$2 mariadb --no-defaults --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_TCP_PORT" -u "$1" --batch --skip-column-names "${@:3}"; }
my_admin() { mariadb --no-defaults --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_TCP_PORT" -u "$MYSQL_USER" --batch --skip-column-names "$@"; }
rd_as() { REDISCLI_AUTH=$2 redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$1" "${@:3}"; }
rd_admin() { redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }

# ---------------------------------------------------------------- postgres

smoke_postgres() {
    local a="$WORK/postgres/a" b="$WORK/postgres/b" ra rb pa pb pa2 db user dbb
    ra=$(uuid) rb=$(uuid) pa=$(new_password) pb=$(new_password) pa2=$(new_password)
    render postgres local "$a"
    render postgres local "$b"
    tfvars "$a" "$(P=$pa jq -n --arg r "$ra" --argjson port "$PGPORT" \
        '{request_id: $r, team_id: "team-a", name: "orders", password: env.P, host: "127.0.0.1", port: $port}')"
    tfvars "$b" "$(P=$pb jq -n --arg r "$rb" --argjson port "$PGPORT" \
        '{request_id: $r, team_id: "team-b", name: "orders", password: env.P, host: "127.0.0.1", port: $port, engine_version: "15"}')"
    step "apply request A and request B (same name, other team)"
    provision "$a"
    provision "$b"
    db=$(out "$a" database) user=$(out "$a" username) dbb=$(out "$b" database)
    [[ $db == "ssi_${ra//-/}" && $user == "$db" ]] || fail "names: $db / $user"
    [[ $(out "$a" password) == "$pa" ]] || fail "output password differs from the generated one"
    [[ $(out "$a" uri) == "postgresql://$user:"*"@127.0.0.1:$PGPORT/$db" ]] || fail "uri has the wrong shape"
    [[ $(out "$a" host):$(out "$a" port) == "127.0.0.1:$PGPORT" ]] || fail "host/port"

    step "A's credentials work on A's database"
    [[ $(pg_as "$user" "$pa" "$db" -c 'select current_user') == "$user" ]] || fail "login as A"
    pg_as "$user" "$pa" "$db" -c 'create table t (x text); insert into t values ($$kept$$)' || fail "A cannot create a table"
    [[ $(pg_admin -c "select rolsuper::text || rolcreatedb::text || rolcreaterole::text from pg_roles where rolname = '$user'") == falsefalsefalse ]] ||
        fail "A's role has more than LOGIN"

    step "A cannot reach B's database or the postgres database; a wrong password fails"
    ! pg_as "$user" "$pa" "$dbb" -c 'select 1' 2>/dev/null || fail "A connected to B's database"
    ! pg_as "$user" "$pa" postgres -c 'select 1' 2>/dev/null || fail "A connected to the postgres database"
    ! pg_as "$(out "$b" username)" "$pa" "$dbb" -c 'select 1' 2>/dev/null || fail "A's password works for B"
    ! pg_as "$user" "${pa}x" "$db" -c 'select 1' 2>/dev/null || fail "a wrong password works"

    step "re-apply: no changes; apply with an empty state converges"
    reapply "$a"
    converge postgres local "$a"
    [[ $(pg_as "$user" "$pa" "$db" -c 'select x from t') == kept ]] || fail "data lost by the converging apply"

    step "new password: only the password resource is replaced, the old one stops working, the data survives"
    tfvars "$a" "$(P=$pa2 jq '.password = env.P' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with a new password"
    tail -n 20 "$LOG" | grep -q 'Resources: 1 added, 0 changed, 1 destroyed' || fail "the password change replaced more than the password resource"
    ! pg_as "$user" "$pa" "$db" -c 'select 1' 2>/dev/null || fail "the old password still works"
    [[ $(pg_as "$user" "$pa2" "$db" -c 'select x from t') == kept ]] || fail "new password or data"

    step "destroy (twice): database and role gone, B untouched"
    destroy_twice "$a"
    [[ $(pg_admin -c "select count(*) from pg_database where datname = '$db'") == 0 ]] || fail "database still there"
    [[ $(pg_admin -c "select count(*) from pg_roles where rolname = '$user'") == 0 ]] || fail "role still there"
    [[ $(pg_as "$(out "$b" username)" "$pb" "$dbb" -c 'select 1') == 1 ]] || fail "B broken by A's destroy"
    destroy_twice "$b"
    [[ $(pg_admin -c "select count(*) from pg_database where datname = '$dbb'") == 0 ]] || fail "B's database still there"
}

# ---------------------------------------------------------------- mysql

smoke_mysql() {
    local a="$WORK/mysql/a" b="$WORK/mysql/b" ra rb pa pb pa2 db user dbb userb
    ra=$(uuid) rb=$(uuid) pa=$(new_password) pb=$(new_password) pa2=$(new_password)
    render mysql local "$a"
    render mysql local "$b"
    tfvars "$a" "$(P=$pa jq -n --arg r "$ra" --argjson port "$MYSQL_TCP_PORT" \
        '{request_id: $r, team_id: "team-a", name: "shop", password: env.P, host: "127.0.0.1", port: $port}')"
    tfvars "$b" "$(P=$pb jq -n --arg r "$rb" --argjson port "$MYSQL_TCP_PORT" \
        '{request_id: $r, team_id: "team-b", name: "shop", password: env.P, host: "127.0.0.1", port: $port, multi_az: true}')"
    step "apply request A and request B"
    provision "$a"
    provision "$b"
    db=$(out "$a" database) user=$(out "$a" username) dbb=$(out "$b" database) userb=$(out "$b" username)
    [[ $db == "ssi_${ra//-/}" && $user == "$db" ]] || fail "names: $db / $user"
    [[ $(out "$a" password) == "$pa" ]] || fail "output password differs from the generated one"
    [[ $(out "$a" uri) == "mysql://$user:"*"@127.0.0.1:$MYSQL_TCP_PORT/$db" ]] || fail "uri has the wrong shape"

    step "A's credentials work on A's database"
    [[ $(my_as "$user" "$pa" "$db" -e 'select current_user()') == "$user@%" ]] || fail "login as A"
    my_as "$user" "$pa" "$db" -e "create table t (x varchar(10)); insert into t values ('kept')" || fail "A cannot create a table"
    [[ $(my_as "$user" "$pa" "$db" -e 'show databases' | grep -vc information_schema) == 1 ]] || fail "A sees other databases"

    step "A cannot use B's database; a wrong password fails"
    ! my_as "$user" "$pa" "$dbb" -e 'select 1' 2>/dev/null || fail "A used B's database"
    ! my_as "$user" "$pa" "$db" -e "select * from \`$dbb\`.t" 2>/dev/null || fail "A read from B's database"
    ! my_as "$userb" "$pa" "$dbb" -e 'select 1' 2>/dev/null || fail "A's password works for B"
    ! my_as "$user" "${pa}x" "$db" -e 'select 1' 2>/dev/null || fail "a wrong password works"

    step "re-apply: no changes; apply with an empty state converges"
    reapply "$a"
    converge mysql local "$a"
    [[ $(my_as "$user" "$pa" "$db" -e 'select x from t') == kept ]] || fail "data lost by the converging apply"

    step "new password: only the password resource is replaced, the old one stops working, the data survives"
    tfvars "$a" "$(P=$pa2 jq '.password = env.P' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with a new password"
    tail -n 20 "$LOG" | grep -q 'Resources: 1 added, 0 changed, 1 destroyed' || fail "the password change replaced more than the password resource"
    ! my_as "$user" "$pa" "$db" -e 'select 1' 2>/dev/null || fail "the old password still works"
    [[ $(my_as "$user" "$pa2" "$db" -e 'select x from t') == kept ]] || fail "new password or data"

    step "destroy (twice): database and user gone, B untouched"
    destroy_twice "$a"
    [[ $(my_admin -e "select count(*) from information_schema.schemata where schema_name = '$db'") == 0 ]] || fail "database still there"
    [[ $(my_admin -e "select count(*) from mysql.user where user = '$user'") == 0 ]] || fail "user still there"
    [[ $(my_as "$userb" "$pb" "$dbb" -e 'select 1') == 1 ]] || fail "B broken by A's destroy"
    destroy_twice "$b"
    [[ $(my_admin -e "select count(*) from mysql.user where user = '$userb'") == 0 ]] || fail "B's user still there"
}

# ---------------------------------------------------------------- redis

smoke_redis() {
    local a="$WORK/redis/a" b="$WORK/redis/b" ra rb pa pb pa2 user prefix userb prefixb r
    ra=$(uuid) rb=$(uuid) pa=$(new_password) pb=$(new_password) pa2=$(new_password)
    render redis local "$a"
    render redis local "$b"
    tfvars "$a" "$(P=$pa jq -n --arg r "$ra" --argjson port "$REDIS_PORT" \
        '{request_id: $r, team_id: "team-a", name: "cache", password: env.P, host: "127.0.0.1", port: $port}')"
    tfvars "$b" "$(P=$pb jq -n --arg r "$rb" --argjson port "$REDIS_PORT" \
        '{request_id: $r, team_id: "team-b", name: "cache", password: env.P, host: "127.0.0.1", port: $port, replicas: 2}')"
    step "apply request A and request B"
    provision "$a"
    provision "$b"
    user=$(out "$a" username) prefix=$(out "$a" key_prefix) userb=$(out "$b" username) prefixb=$(out "$b" key_prefix)
    [[ $user == "ssi_${ra//-/}" && $prefix == "$user:" ]] || fail "names: $user / $prefix"
    [[ $(out "$a" password) == "$pa" ]] || fail "output password differs from the generated one"

    step "A's credentials work on A's keys"
    [[ $(rd_as "$user" "$pa" ACL WHOAMI) == "$user" ]] || fail "login as A"
    [[ $(rd_as "$user" "$pa" SET "${prefix}k" kept) == OK ]] || fail "A cannot SET its own key"
    [[ $(rd_as "$userb" "$pb" SET "${prefixb}k" b-data) == OK ]] || fail "B cannot SET its own key"

    step "A cannot touch other keys or run dangerous commands; a wrong password fails"
    set -f # the commands below are split into words, without globbing
    for cmd in "SET other:k x" "GET ${prefixb}k" "KEYS *" "SCAN 0" "RANDOMKEY" "FLUSHALL" "CONFIG GET *" \
        "SELECT 0" "MOVE ${prefix}k 1" "EVAL return 1 0" "ACL LIST" "SUBSCRIBE ch" "CLIENT LIST"; do
        # shellcheck disable=SC2086 # the command is split into words on purpose
        r=$(rd_as "$user" "$pa" $cmd 2>&1) || true
        [[ $r == *NOPERM* ]] || fail "A may run '$cmd': $r"
    done
    set +f
    r=$(rd_as "$user" "${pa}x" PING 2>&1) || true
    [[ $r == *WRONGPASS* ]] || fail "a wrong password works: $r"
    r=$(rd_as "$userb" "$pa" PING 2>&1) || true
    [[ $r == *WRONGPASS* ]] || fail "A's password works for B: $r"

    step "re-apply: no changes; apply with an empty state converges"
    reapply "$a"
    converge redis local "$a"
    [[ $(rd_as "$user" "$pa" GET "${prefix}k") == kept ]] || fail "key lost or login broken by the converging apply"

    step "new password: only the password resource is replaced, the old one stops working, the keys survive"
    tfvars "$a" "$(P=$pa2 jq '.password = env.P' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with a new password"
    tail -n 20 "$LOG" | grep -q 'Resources: 1 added, 0 changed, 1 destroyed' || fail "the password change replaced more than the password resource"
    r=$(rd_as "$user" "$pa" PING 2>&1) || true
    [[ $r == *WRONGPASS* ]] || fail "the old password still works: $r"
    [[ $(rd_as "$user" "$pa2" GET "${prefix}k") == kept ]] || fail "new password or key"

    step "destroy (twice): user and keys gone, B untouched"
    destroy_twice "$a"
    [[ -z $(rd_admin ACL GETUSER "$user") ]] || fail "ACL user still there"
    [[ $(rd_admin EXISTS "${prefix}k") == 0 ]] || fail "A's key still there"
    [[ $(rd_as "$userb" "$pb" GET "${prefixb}k") == b-data ]] || fail "B broken by A's destroy"
    destroy_twice "$b"
    [[ -z $(rd_admin ACL GETUSER "$userb") && $(rd_admin EXISTS "${prefixb}k") == 0 ]] || fail "B's user or key still there"
}

# ---------------------------------------------------------------- moto (S3, SQS)

# py CHECK ARGS...: a check in Python (boto3 against moto). The admin key comes from the
# environment; the request's key is read by Python from the output file.
py() { "$VENV/bin/python" - "$@" <<'EOF'
import json, os, sys, boto3
from botocore.exceptions import ClientError

ep = os.environ["SSI_AWS_ENDPOINT"]
check, args = sys.argv[1], sys.argv[2:]

def client(svc, out=None):
    kw = {}
    if out:
        o = json.load(open(out))
        kw = dict(aws_access_key_id=o["access_key_id"]["value"], aws_secret_access_key=o["secret_access_key"]["value"])
    return boto3.client(svc, endpoint_url=ep, region_name="us-east-1", **kw)

def denied(f):
    try:
        f()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException", "403", "InvalidClientTokenId") or "denied" in str(e).lower() or "not authorized" in str(e).lower()
    return False

def gone(f):
    try:
        f()
    except ClientError:
        return True
    return False

def ok(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")

if check == "s3-created":
    out, rid, other = args
    o = json.load(open(out))
    b = o["bucket"]["value"]
    s3, iam = client("s3"), client("iam")
    ok(b == "ssi-photos-" + rid.replace("-", "")[:8], f"bucket name {b}")
    ok(o["arn"]["value"] == f"arn:aws:s3:::{b}", "arn")
    ok(s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled", "versioning")
    enc = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
    ok(enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", "encryption")
    pab = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
    ok(all(pab.values()), f"public access block {pab}")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=b)["TagSet"]}
    ok(tags == {"ssi:request_id": rid, "ssi:team_id": "team-a", "ssi:resource_type": "s3_bucket"}, f"tags {tags}")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    ok(rules[0]["Expiration"]["Days"] == 30, f"lifecycle {rules}")
    user = "ssi-s3-" + rid.replace("-", "")
    ok({t["Key"] for t in iam.list_user_tags(UserName=user)["Tags"]} >= {"ssi:request_id", "ssi:team_id", "ssi:resource_type"}, "user tags")
    u = client("s3", out)
    u.put_object(Bucket=b, Key="hello.txt", Body=b"kept")
    ok(u.get_object(Bucket=b, Key="hello.txt")["Body"].read() == b"kept", "the key cannot read its own object")
    ok([x["Key"] for x in u.list_objects_v2(Bucket=b)["Contents"]] == ["hello.txt"], "the key cannot list its bucket")
    s3.create_bucket(Bucket=other)
    ok(denied(lambda: u.put_object(Bucket=other, Key="x", Body=b"x")), "the key may write to another bucket")
    ok(denied(lambda: u.list_objects_v2(Bucket=other)), "the key may list another bucket")
    ok(denied(lambda: u.list_buckets()), "the key may list all buckets")
    ok(denied(lambda: client("iam", out).list_users()), "the key may use IAM")
    ok(denied(lambda: client("sqs", out).list_queues()), "the key may use SQS")
elif check == "s3-changed":
    out, = args
    b = json.load(open(out))["bucket"]["value"]
    s3 = client("s3")
    ok(s3.get_bucket_versioning(Bucket=b).get("Status") == "Suspended", "versioning not suspended")
    ok(client("s3", out).get_object(Bucket=b, Key="hello.txt")["Body"].read() == b"kept", "object lost by the change")
elif check == "s3-gone":
    out, rid, other = args
    b = json.load(open(out))["bucket"]["value"]
    s3, iam = client("s3"), client("iam")
    ok(gone(lambda: s3.head_bucket(Bucket=b)), "bucket still there")
    ok(gone(lambda: iam.get_user(UserName="ssi-s3-" + rid.replace("-", ""))), "IAM user still there")
    s3.delete_bucket(Bucket=other)
elif check == "sqs-created":
    out, rid, other = args
    o = json.load(open(out))
    url, arn = o["queue_url"]["value"], o["arn"]["value"]
    name = "ssi-jobs-" + rid.replace("-", "")[:8] + ".fifo"
    sqs, iam = client("sqs"), client("iam")
    ok(url.endswith("/" + name) and arn.endswith(":" + name), f"queue name {url} {arn}")
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    ok(a["FifoQueue"] == "true" and a["VisibilityTimeout"] == "45" and a["MessageRetentionPeriod"] == str(2 * 86400), f"attributes {a}")
    ok(a.get("KmsMasterKeyId") == "alias/aws/sqs", "encryption")
    rp = json.loads(a["RedrivePolicy"])
    ok(int(rp["maxReceiveCount"]) == 3 and rp["deadLetterTargetArn"].endswith("-dlq.fifo"), f"redrive {rp}")
    tags = sqs.list_queue_tags(QueueUrl=url)["Tags"]
    ok(tags == {"ssi:request_id": rid, "ssi:team_id": "team-a", "ssi:resource_type": "sqs_queue"}, f"tags {tags}")
    u = client("sqs", out)
    u.send_message(QueueUrl=url, MessageBody="kept", MessageGroupId="g", MessageDeduplicationId="d1")
    m = u.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    ok(m[0]["Body"] == "kept", "the key cannot receive from its queue")
    u.change_message_visibility(QueueUrl=url, ReceiptHandle=m[0]["ReceiptHandle"], VisibilityTimeout=0)
    ourl = sqs.create_queue(QueueName=other)["QueueUrl"]
    ok(denied(lambda: u.send_message(QueueUrl=ourl, MessageBody="x")), "the key may send to another queue")
    ok(denied(lambda: u.list_queues()), "the key may list all queues")
    ok(denied(lambda: client("s3", out).list_buckets()), "the key may use S3")
elif check == "sqs-changed":
    out, = args
    url = json.load(open(out))["queue_url"]["value"]
    a = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    ok(a["VisibilityTimeout"] == "120", f"visibility timeout not changed: {a['VisibilityTimeout']}")
    m = client("sqs", out).receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
    ok(m and m[0]["Body"] == "kept", "message lost by the change")
elif check == "sqs-gone":
    out, rid, other = args
    o = json.load(open(out))
    sqs, iam = client("sqs"), client("iam")
    names = [u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", [])]
    ok(not [n for n in names if n.startswith("ssi-jobs-")], f"queues still there: {names}")
    ok(gone(lambda: iam.get_user(UserName="ssi-sqs-" + rid.replace("-", ""))), "IAM user still there")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=other)["QueueUrl"])
else:
    sys.exit(f"unknown check {check}")
EOF
}

smoke_s3_bucket() {
    local a="$WORK/s3_bucket/a" ra other
    ra=$(uuid) other="ssi-other-$(hex 4)"
    render s3_bucket aws "$a"
    tfvars "$a" "$(jq -n --arg r "$ra" '{request_id: $r, team_id: "team-a", name: "photos", lifecycle_days: 30}')"
    step "apply (against moto, IAM authentication on)"
    provision "$a"
    jq -r '.secret_access_key.value' "$a/out.json" >>"$SECRETS"
    step "bucket settings and tags; the key uses its bucket and nothing else"
    py s3-created "$a/out.json" "$ra" "$other" || fail "checks after apply"
    # No apply with an empty state here: AWS objects are not adopted by a create (see
    # infra/terraform/README.md, "Interrupted applies").
    step "re-apply: no changes"
    reapply "$a"
    step "parameter change (versioning off): in place, object kept"
    tfvars "$a" "$(jq '.versioning = false' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with versioning = false"
    tail -n 20 "$LOG" | grep -q 'Resources: 0 added, 1 changed, 0 destroyed' || fail "the change was not in place"
    py s3-changed "$a/out.json" || fail "checks after the change"
    step "destroy (twice): bucket (with its object) and IAM user gone"
    destroy_twice "$a"
    py s3-gone "$a/out.json" "$ra" "$other" || fail "checks after destroy"
}

smoke_sqs_queue() {
    local a="$WORK/sqs_queue/a" ra other
    ra=$(uuid) other="ssi-other-$(hex 4)"
    render sqs_queue aws "$a"
    tfvars "$a" "$(jq -n --arg r "$ra" '{request_id: $r, team_id: "team-a", name: "jobs", fifo: true,
        visibility_timeout_seconds: 45, message_retention_days: 2, dead_letter_max_receives: 3}')"
    step "apply a FIFO queue with a dead-letter queue (against moto, IAM authentication on)"
    provision "$a"
    jq -r '.secret_access_key.value' "$a/out.json" >>"$SECRETS"
    step "queue attributes and tags; the key uses its queue and nothing else"
    py sqs-created "$a/out.json" "$ra" "$other" || fail "checks after apply"
    step "re-apply: no changes"
    reapply "$a"
    step "parameter change (visibility timeout): in place, message kept"
    tfvars "$a" "$(jq '.visibility_timeout_seconds = 120' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with a new visibility timeout"
    tail -n 20 "$LOG" | grep -q 'Resources: 0 added, 1 changed, 0 destroyed' || fail "the change was not in place"
    py sqs-changed "$a/out.json" || fail "checks after the change"
    step "destroy (twice): queues and IAM user gone"
    destroy_twice "$a"
    py sqs-gone "$a/out.json" "$ra" "$other" || fail "checks after destroy"
}

# ---------------------------------------------------------------- k8s_namespace

smoke_k8s_namespace() {
    local a="$WORK/k8s_namespace/a" ra ns file long
    ra=$(uuid)
    render k8s_namespace local "$a"
    tfvars "$a" "$(jq -n --arg r "$ra" '{request_id: $r, team_id: "team-a", name: "web", cpu_quota: 0.5}')"
    step "apply (simulated: manifests in \$SSI_K8S_SIM_DIR)"
    provision "$a"
    ns=$(out "$a" namespace)
    [[ $ns == "web-${ra:0:8}" ]] || fail "namespace name $ns"
    file="$SSI_K8S_SIM_DIR/$ns.yaml"
    [[ -f $file ]] || fail "no manifest $file"
    grep -q '"kind": "Namespace"' "$file" && grep -q '"kind": "ResourceQuota"' "$file" &&
        grep -q '"requests.cpu": "0.5"' "$file" && grep -q '"limits.memory": "4Gi"' "$file" &&
        grep -q "\"ssi/request_id\": \"$ra\"" "$file" && grep -q SIMULATED "$file" || fail "manifest content"
    step "re-apply: no changes; apply with an empty state converges"
    reapply "$a"
    converge k8s_namespace local "$a"
    step "quota change: the manifest is rewritten, the namespace resource stays"
    tfvars "$a" "$(jq '.memory_quota_gib = 8' "$a/terraform.tfvars.json")"
    tf "$a" apply -input=false -auto-approve || fail "apply with a new quota"
    tail -n 20 "$LOG" | grep -q 'Resources: 1 added, 0 changed, 1 destroyed' || fail "the quota change replaced more than the quota"
    grep -q '"limits.memory": "8Gi"' "$file" || fail "quota not rewritten"
    step "destroy (twice): manifest gone"
    destroy_twice "$a"
    [[ ! -e $file ]] || fail "manifest still there"
    step "a 63-character name gives a namespace of at most 63 characters"
    long=$(printf 'a%.0s' {1..53})-b12345678
    tfvars "$a" "$(jq -n --arg r "$ra" --arg n "$long" '{request_id: $r, team_id: "team-a", name: $n}')"
    provision "$a"
    ns=$(out "$a" namespace)
    ((${#ns} <= 63)) && [[ $ns =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ && $ns != *--* ]] || fail "namespace $ns (${#ns} characters)"
    destroy_twice "$a"
}

# ---------------------------------------------------------------- run

echo "== types: ${TYPES[*]}"
declare -A RESULT
failed=0
for type in "${TYPES[@]}"; do
    LOG="$WORK/$type.log"
    : >"$LOG"
    start=$SECONDS
    echo "-- $type"
    set +e
    (
        set -euo pipefail
        "smoke_$type"
    )
    rc=$?
    set -e
    if ((rc == 0)); then
        RESULT[$type]="PASS $type ($((SECONDS - start)) s)"
    else
        RESULT[$type]="FAIL $type ($((SECONDS - start)) s)"
        failed=1
        echo "     ---- last lines of the terraform log ----"
        tail -n 40 "$LOG" | sed 's/^/     | /'
    fi
done

echo "== secrets in logs"
# Every generated password and key, and the admin passwords, must be absent from the
# terraform logs, the recorded command lines and this script's output files.
leaks=0
ALL_SECRETS="$WORK/all-secrets"
{
    grep -v '^$' "$SECRETS" || true
    printf '%s\n' "${ADMIN_SECRETS[@]}"
} >"$ALL_SECRETS"
for f in "$WORK"/*.log "$ARGV_LOG" "$ROOT"/.local/engines/*-*/*.log; do
    [[ -f $f ]] || continue
    # The patterns come from a file (-f), so no secret is on grep's command line.
    if grep -qFf "$ALL_SECRETS" -- "$f"; then
        echo "LEAK: a secret appears in ${f#"$WORK"/}"
        leaks=1
    fi
done
if ((leaks)); then
    failed=1
    echo "FAIL no secrets in logs or command lines"
else
    echo "PASS no secrets in logs or command lines ($(wc -l <"$ARGV_LOG") client command lines recorded," \
        "$(wc -l <"$ALL_SECRETS") secrets checked)"
fi

echo "== result"
for type in "${TYPES[@]}"; do
    echo "${RESULT[$type]}"
done
if ((failed)); then
    echo "tf-smoke: FAILED"
    exit 1
fi
echo "tf-smoke: all passed"
