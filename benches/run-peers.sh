#!/usr/bin/env bash
# run-peers.sh -- mailcat against its peers on the lab, side by side (issue 12, "The benchmark").
#
# Usage: benches/run-peers.sh [--runs N] [--rows KEY,...] [--no-write] [--note TEXT]
#
# Builds mailcat and the peer binaries of mailcat-benches in release mode (into
# $CARGO_TARGET_DIR, else target/), then runs benches/peers/run.py: every row's clients take
# turns, N runs each (default 5); the table of medians (wall, client CPU, peak RSS) and ratios
# to the best peer is printed and written to BENCHMARKS.md at the root (unless --no-write).
# Needs the lab's environment (eval "$(tests/lab/lab.sh env DIR)"), root (lab.sh seed) and curl.
# Row keys: imap-lib imap-cli-tmpfs imap-cli-ext4 pop3-lib pop3-cli-tmpfs pop3-cli-ext4 (2,000 x 4 KiB),
#           the same with -1m (20 x 1 MiB), cat-200m (one 200 MiB message),
#           smtp-one smtp-process
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
given="" args=() write=1
while (($#)); do
    case $1 in
        --no-write) write=0 ;;
        --runs|--rows) args+=("$1" "$2"); given+="${given:+ }$1 $2"; shift ;;
        --note) args+=("$1" "$2"); shift ;;
        *) echo "usage: benches/run-peers.sh [--runs N] [--rows KEY,...] [--no-write] [--note TEXT]" >&2; exit 2 ;;
    esac
    shift
done
cargo build --release -p mailcat -p mailcat-benches --bin mailcat \
    --bin peer_mailcat_imap --bin peer_mailcat_pop3 --bin peer_mailcat_smtp --bin peer_async_imap --bin peer_async_pop --bin peer_lettre --bin peer_raw
((write)) && args+=(--out "$ROOT/BENCHMARKS.md")
exec "$PY" "$ROOT/benches/peers/run.py" --bin-dir "$TARGET/release" \
    --command "benches/run-peers.sh${given:+ $given}" "${args[@]}"
