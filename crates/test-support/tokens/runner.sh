#!/bin/sh
# The target runner of this workspace (.cargo/config.toml): cargo and
# cargo-nextest start every test, bench, doctest and example binary through
# it, as `runner.sh BINARY ARGS...`.
#
# It gives the process its own SoftHSM2 configuration path in SOFTHSM2_CONF.
# SoftHSM2 reads that variable (with getenv, at C_Initialize) and nothing
# else, so it must be in the environment the process starts with: setting it
# later, while other test threads may read the environment, is the data race
# that makes std::env::set_var unsafe. `$$` is the process id the binary
# keeps after `exec`, which makes the path the process's own;
# strongroom-test-tokens writes the file there when a test first asks for a
# SoftHSM2 token (and refuses a path that is not its own), and a later
# process removes the directory once this one has ended.
#
# Examples keep the caller's SOFTHSM2_CONF: they start no test tokens.
case $1 in
*/examples/*) ;;
*)
    SOFTHSM2_CONF="${TMPDIR:-/tmp}/strongroom-test-tokens/$$-softhsm2/softhsm2.conf"
    export SOFTHSM2_CONF
    ;;
esac
exec "$@"
