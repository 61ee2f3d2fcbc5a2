#!/bin/sh
# How much of the IMAP/POP3/SMTP session code lives in the sans-I/O cores (crates/session/src/
# core: no tokio, no clock) and how much in the async wrappers and the driver. Counts code
# lines only: no blank lines, no comments, nothing after a file's `#[cfg(test)]`.
# Usage: scripts/sans-io-share.sh   (from the repository root)
set -eu
cd "$(dirname "$0")/.."
count() {
    for f in "$@"; do
        [ -f "$f" ] || continue
        awk '/^#\[cfg\(test\)\]/ { exit } { sub(/^[ \t]+/, "") } $0 != "" && $0 !~ /^\/\// { n++ } END { print n + 0 }' "$f"
    done | awk '{ s += $1 } END { print s + 0 }'
}
core=$(count crates/session/src/core/*.rs crates/session/src/core/*/*.rs)
io=$(count crates/session/src/imap.rs crates/session/src/imap/*.rs crates/session/src/pop3.rs \
    crates/session/src/smtp.rs crates/session/src/open.rs crates/session/src/driver.rs)
echo "sans-I/O cores: $core lines; async wrappers and driver: $io lines;" \
    "cores' share: $((100 * core / (core + io)))%"
if grep -lE '^use tokio|tokio::|Instant::now|SystemTime::now' crates/session/src/core/*.rs \
    crates/session/src/core/*/*.rs 2>/dev/null; then
    echo "the files above in crates/session/src/core use tokio or read a clock" >&2
    exit 1
fi
