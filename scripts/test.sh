#!/usr/bin/env bash
# The test command (README.md "Run the tests"; .ci/run calls exactly this).
# Passes on a fresh machine with only Rust (and its C linker) installed: it
# installs or builds what the tests need, each step skipped when already
# there, then runs every test.
#
# - cargo-nextest (cargo install);
# - Debian packages: SoftHSM2 (PKCS#11 tests) and what the Kryoptic PKCS#11
#   module builds with: libclang for bindgen, sqlite for its token store,
#   OpenSSL for its cryptography, pkg-config (apt-get, through sudo when not
#   root);
# - Python's `cryptography`, for the envelope's third-party decryptor test;
# - the store emulators, Azurite (npm) and moto (PyPI, in a venv), under
#   target/emulators (scripts/emulators.sh), which the store suite runs
#   against: nextest runs inside scripts/emulators.sh, which starts both on
#   free loopback ports and stops them after;
# - the Kryoptic module itself (cargo build), which the key vault tests load
#   and nothing links.
#
# `scripts/test.sh --install` installs and stops (.ci/run's first step:
# clippy builds the Kryoptic module's bindings too).
#
# The AES-GCM tests force every implementation tier this CPU can run (and
# fail rather than skip one): the list comes from the library's own
# detection, printed by its `tiers` example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

pkgs=()
for pkg in softhsm2 libclang-dev libsqlite3-dev pkg-config libssl-dev; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == 'install ok installed' ]] ||
        pkgs+=("$pkg")
done
if ((${#pkgs[@]})); then
    echo "installing ${pkgs[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography
bash scripts/emulators.sh --install
[[ ${1:-} != --install ]] || exit 0

# `cargo run` without `-p` resolves features for the whole workspace, as
# the test build does, so the library is not built twice.
tiers=$(cargo run -q --example tiers)
STRONGROOM_REQUIRE_BACKENDS=$(sed -n 's/^runs=//p' <<<"$tiers")
lacking=$(sed -n 's/^cannot_run=//p' <<<"$tiers")
[[ -n $STRONGROOM_REQUIRE_BACKENDS ]] || {
    echo "error: the tiers example named no tier: $tiers" >&2
    exit 1
}
export STRONGROOM_REQUIRE_BACKENDS
echo "AES-GCM tiers tested on this CPU: $STRONGROOM_REQUIRE_BACKENDS"
[[ -z $lacking ]] || echo "AES-GCM tiers this CPU cannot run, NOT tested here: ${lacking//,/ }"

cargo build -p strongroom-kryoptic-pkcs11
bash scripts/emulators.sh -- cargo nextest run --workspace --no-fail-fast
cargo test --workspace --doc
