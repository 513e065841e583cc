#!/usr/bin/env bash
# Local AWS emulator without Docker: moto server on 127.0.0.1 (DynamoDB, S3, Step Functions).
#
#   moto.sh install          install moto[server] with pip if python3 cannot import it
#   moto.sh start [PORT]     start in the background (free port if none given), wait until it
#                            answers, print the environment to use:  eval "$(moto.sh start)"
#   moto.sh stop [PORT]      stop the server started on PORT (all started by this script if none)
#   moto.sh env PORT         print the environment for a server on PORT
#   moto.sh run PORT         run in the foreground (exec), for harnesses that own the process
#                            (deskshift-store-aws's emulator module uses this)
#
# If AWS_ENDPOINT_URL is already set (LocalStack under Docker, a shared moto), the tests use it
# and never call this script. State (pid and log files) lives in $MOTO_STATE_DIR.
set -euo pipefail

MOTO_SPEC="${MOTO_SPEC:-moto[server]>=5.2,<5.3}"
STATE_DIR="${MOTO_STATE_DIR:-${TMPDIR:-/tmp}/deskshift-moto}"
PYTHON="${PYTHON:-python3}"

die() { echo "moto.sh: $*" >&2; exit 1; }

has_moto() {
    "$PYTHON" -c 'import moto.server, moto.dynamodb.responses, flask_cors' >/dev/null 2>&1
}

install() {
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "python3 is missing: install Python 3, then run: $PYTHON -m pip install '$MOTO_SPEC'"
    has_moto && return 0
    echo "moto.sh: moto server not importable from $PYTHON, installing $MOTO_SPEC with pip" >&2
    "$PYTHON" -m pip install --quiet "$MOTO_SPEC" >&2 \
        || die "pip could not install $MOTO_SPEC: install it by hand ($PYTHON -m pip install '$MOTO_SPEC')"
    has_moto || die "$PYTHON still cannot import moto's server after installing $MOTO_SPEC"
}

# moto's server with DynamoDB requests serialised (see moto_atomic.py: DynamoDB's single-item
# writes are atomic, moto's are not under concurrent requests).
SERVER=("$PYTHON" "$(cd "$(dirname "$0")" && pwd)/moto_atomic.py")

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

answers() {
    "$PYTHON" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2)
EOF
}

print_env() {
    local port="$1"
    cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export MOTO_PORT=$port
EOF
}

check_port() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] || die "expected a port number, got '${1:-}'"
}

start() {
    install
    local port="${1:-$(free_port)}"
    check_port "$port"
    mkdir -p "$STATE_DIR"
    local pidfile="$STATE_DIR/moto-$port.pid" log="$STATE_DIR/moto-$port.log"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "a moto server started by this script already runs on port $port (pid $(cat "$pidfile"))"
    fi
    # MOTO_PORT: moto's Step Functions interpreter calls services on this port.
    MOTO_PORT="$port" nohup "${SERVER[@]}" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 300); do
        if answers "$port"; then
            print_env "$port"
            return 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    stop "$port" >/dev/null 2>&1 || true
    die "moto server did not answer on port $port; its log ($log) ends: $(tail -n 20 "$log" 2>/dev/null)"
}

stop() {
    local pidfiles=()
    if [[ $# -gt 0 ]]; then
        check_port "$1"
        pidfiles=("$STATE_DIR/moto-$1.pid")
    else
        shopt -s nullglob
        pidfiles=("$STATE_DIR"/moto-*.pid)
    fi
    local pidfile pid
    for pidfile in "${pidfiles[@]}"; do
        [[ -f "$pidfile" ]] || continue
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
        echo "moto.sh: stopped the server of $pidfile" >&2
    done
}

cmd="${1:-}"
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    env) check_port "${1:-}"; print_env "$1" ;;
    run)
        check_port "${1:-}"
        install
        export MOTO_PORT="$1"
        exec "${SERVER[@]}" -H 127.0.0.1 -p "$1"
        ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
