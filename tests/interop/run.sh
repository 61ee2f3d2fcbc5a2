#!/usr/bin/env bash
# run.sh -- mailcat against servers nobody here wrote: Exim, Cyrus IMAP, Courier-IMAP.
#
# Usage: tests/interop/run.sh [--mailcat BIN] [--keep] [--prepare] [SERVER...]
#
#   SERVER     exim, cyrus, courier (default: all three, in that order)
#   --mailcat  the mailcat binary to test (default: cargo build -p mailcat, target/debug/mailcat)
#   --keep     keep the work directory (configs, logs, mailboxes, transcripts) even on success
#   --prepare  only download and unpack the packages and check their libraries (CI does this
#              first, so a missing package fails in seconds rather than after the other tests)
#
# Needs root and Debian 12 with apt's package lists. Each server's packages are downloaded with
# `apt-get download` and unpacked with `dpkg -x` into a cache (never installed: they conflict
# with the lab's Dovecot and Postfix); each daemon runs in a PID + mount namespace of its own,
# with its own configuration, TLS certificate, directory and free ports on 127.0.0.1.
# Every server must start: one that cannot fails the run. Exit 0 only when every check passed.
# All servers are stopped on exit.
#
# Environment: MAILCAT_INTEROP_CACHE (default /var/cache/mailcat-interop: .debs and unpacked
#   roots), MAILCAT_INTEROP_READY_TIMEOUT (s, 30), MAILCAT_INTEROP_COMMAND_TIMEOUT (s, 120).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECKOUT=$(cd "$HERE/../.." && pwd -P)

# shellcheck source=tests/interop/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/interop/checks.sh
source "$HERE/checks.sh"
# shellcheck source=tests/interop/exim.sh
source "$HERE/exim.sh"
# shellcheck source=tests/interop/cyrus.sh
source "$HERE/cyrus.sh"
# shellcheck source=tests/interop/courier.sh
source "$HERE/courier.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

MAILCAT="" KEEP=0 PREPARE=0 SERVERS=()
while (( $# )); do
    case $1 in
        --mailcat) MAILCAT=${2:?--mailcat needs a path}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --prepare) PREPARE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        exim|cyrus|courier) SERVERS+=("$1"); shift ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
ALL_SERVERS=(exim cyrus courier)
(( ${#SERVERS[@]} )) || SERVERS=("${ALL_SERVERS[@]}")
[[ $(id -u) -eq 0 ]] || die "run.sh must run as root (the daemons need it, and the mount namespaces)"
for tool in apt-get dpkg unshare setsid openssl python3 flock ldd timeout; do
    command -v "$tool" >/dev/null || die "'$tool' is missing"
done

t_start=$(now_ms)
CACHE=${MAILCAT_INTEROP_CACHE:-/var/cache/mailcat-interop}
mkdir -p "$CACHE"
if (( PREPARE )); then
    for server in "${SERVERS[@]}"; do "${server}_prepare"; done
    log "prepared ${SERVERS[*]} in $CACHE ($(( $(now_ms) - t_start )) ms)"
    exit 0
fi
if [[ -z $MAILCAT ]]; then
    log "building mailcat (cargo build -p mailcat)"
    (cd "$CHECKOUT" && cargo build --quiet -p mailcat) || die "cargo build -p mailcat failed"
    MAILCAT=$CHECKOUT/target/debug/mailcat
fi
[[ -x $MAILCAT ]] || die "$MAILCAT is not an executable"
MAILCAT=$(cd "$(dirname "$MAILCAT")" && pwd -P)/$(basename "$MAILCAT")

# Short (Courier's and Cyrus's unix sockets live in it) and searchable by the daemons' users.
WORK=$(mktemp -d /tmp/mc-interop.XXXXXX)
chmod 0755 "$WORK"
mkdir -p "$WORK/out"
TLS=$WORK/tls
ALICE_PW='alice-interop-pw'
BOB_PW='bob-interop-pw'

finish() {
    local rc=$?
    stop_all_servers
    if (( rc == 0 && KEEP == 0 )); then rm -rf "$WORK"
    else log "the work directory is kept: $WORK (logs: $WORK/*/log, mailcat transcripts: $WORK/out)"; fi
    exit "$rc"
}
trap finish EXIT
# A command that fails outside a check ends the run: say which one.
set -E
trap 'log "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]##*/}:$LINENO"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

make_tls "$TLS"
for server in "${SERVERS[@]}"; do
    printf '\n=== %s ===\n' "$server"
    t0=$(now_ms)
    MSGS=$WORK/messages/$server
    "${server}_up"
    log "$server up in $(( $(now_ms) - t0 )) ms"
    "${server}_checks"
    stop_server "$server"
done

printf '\n=== interop: %d passed, %d failed, in %d s ===\n' \
    "$PASSED" "$FAILED" $(( ($(now_ms) - t_start) / 1000 ))
if (( FAILED )); then
    for f in "${FAILURES[@]}"; do printf 'FAILED: %s\n' "$f"; done
    die "$FAILED interop check(s) failed; transcripts in $WORK/out"
fi
