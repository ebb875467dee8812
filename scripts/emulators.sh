#!/usr/bin/env bash
# The store emulators, real servers on 127.0.0.1 (issue 15):
# - Azurite (npm `azurite`), Azure Blob Storage's emulator;
# - moto in server mode (PyPI `moto[server]`), an S3 emulator.
#
#   bash scripts/emulators.sh --install        installs both under target/emulators
#   bash scripts/emulators.sh -- CMD [ARGS...] installs them if needed, starts both on
#                                              free loopback ports, runs CMD with
#                                              STRONGROOM_TEST_AZURITE and
#                                              STRONGROOM_TEST_S3 set to host:port,
#                                              stops them, and exits with CMD's status
#
# scripts/test.sh runs the tests through it; the store benches need it too:
#   bash scripts/emulators.sh -- cargo bench -p strongroom-benches --bench stores
# Versions are pinned: an emulator's behaviour is part of what is tested.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
AZURITE_VERSION=3.37.0
MOTO_VERSION=5.2.6
dir=$PWD/target/emulators
azurite=$dir/azurite/node_modules/.bin/azurite-blob
moto=$dir/moto/bin/moto_server

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install() {
    mkdir -p "$dir"
    if ! command -v npm >/dev/null; then
        echo "installing nodejs and npm (for Azurite)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
    fi
    if [[ ! -x $azurite || $(cat "$dir/azurite/.version" 2>/dev/null) != "$AZURITE_VERSION" ]]; then
        echo "installing azurite@$AZURITE_VERSION (npm) in $dir/azurite"
        npm install --prefix "$dir/azurite" --no-audit --no-fund --loglevel=error \
            "azurite@$AZURITE_VERSION"
        echo "$AZURITE_VERSION" >"$dir/azurite/.version"
    fi
    if [[ ! -x $moto || $(cat "$dir/moto/.version" 2>/dev/null) != "$MOTO_VERSION" ]]; then
        echo "installing moto[server]==$MOTO_VERSION (PyPI) in a venv in $dir/moto"
        rm -rf "$dir/moto"
        python3 -m venv "$dir/moto"
        "$dir/moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
        echo "$MOTO_VERSION" >"$dir/moto/.version"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:$1 (30 s at most).
wait_port() {
    local port=$1 name=$2 log=$3
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "error: $name did not start on 127.0.0.1:$port; its log ($log):" >&2
    cat "$log" >&2
    return 1
}

case ${1:-} in
--install)
    install
    exit 0
    ;;
--) shift ;;
*)
    echo "usage: $0 --install | -- CMD [ARGS...]" >&2
    exit 2
    ;;
esac
(($#)) || { echo "usage: $0 -- CMD [ARGS...]" >&2; exit 2; }
install

run=$(mktemp -d "$dir/run.XXXXXX")
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$run"
}
trap stop EXIT

azurite_port=$(free_port)
mkdir -p "$run/azurite"
"$azurite" --blobHost 127.0.0.1 --blobPort "$azurite_port" --location "$run/azurite" \
    --disableTelemetry --skipApiVersionCheck --silent >"$run/azurite.log" 2>&1 &
pids+=($!)
s3_port=$(free_port)
"$moto" -H 127.0.0.1 -p "$s3_port" >"$run/moto.log" 2>&1 &
pids+=($!)
wait_port "$azurite_port" Azurite "$run/azurite.log"
wait_port "$s3_port" moto "$run/moto.log"
export STRONGROOM_TEST_AZURITE=127.0.0.1:$azurite_port
export STRONGROOM_TEST_S3=127.0.0.1:$s3_port
echo "emulators: Azurite $AZURITE_VERSION on $STRONGROOM_TEST_AZURITE, moto $MOTO_VERSION on $STRONGROOM_TEST_S3"
status=0
"$@" || status=$?
exit "$status"
