#!/usr/bin/env bash
# The full test suite, as CI runs it. Run from anywhere, as root (the mail-server lab needs it);
# installs what it needs (the lab's Debian packages, cargo-deny, cargo-fuzz).
#   FUZZ_SECONDS=20  seconds of fuzzing per target (18 targets; the long runs are fuzz/long-run.sh) (0 skips the fuzz smoke run, e.g. while iterating)
#   MAILCAT_LAB_DIR  where the lab lives (default: a fixed directory per checkout, see tests/lab/lab.sh)
#
# The end-to-end tests run against the lab (tests/lab/lab.sh): real Dovecot + Postfix on loopback.
# It is brought up before the tests, its MAILCAT_LAB_* variables are exported for them, and it is
# brought down at the end -- unless it was already running, in which case it is left running.
#
# The interop suite (tests/interop/run.sh) then runs mailcat against Exim, Cyrus and Courier,
# each unpacked from its Debian package (cached in /var/cache/mailcat-interop) and started in a
# namespace of its own; a server that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s ===\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
# With the lab tests (`--features lab`, as they run below) and without (as a newcomer's plain
# `cargo test` builds them): neither may warn.
cargo clippy --workspace --all-targets --features lab -- -D warnings
cargo clippy --workspace --all-targets -- -D warnings

step "dependencies: cargo deny check bans licenses sources (deny.toml)"
# Licenses, banned crates (OpenSSL, native-tls) and sources (crates.io only), from Cargo.lock;
# drop --hide-inclusion-graph to see which dependency pulls a crate in. Advisories need the
# RustSec database from GitHub, out of CI's reach: run `cargo deny check advisories` by hand
# before a release.
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
cargo deny --color never check --hide-inclusion-graph bans licenses sources

step "mail-server lab: install, up, check"
lab=tests/lab/lab.sh
"$lab" install                   # skips apt when every package is present
lab_started=0
if "$lab" status >/dev/null 2>&1; then
  echo "the lab is already running; it stays up after the tests"
else
  lab_started=1
  trap '"$lab" down || echo "WARNING: lab.sh down failed; run: tests/lab/lab.sh down" >&2' EXIT
  "$lab" up
fi
# `lab.sh env` prints `export MAILCAT_LAB_...=...` lines; tests read them and fail when absent.
lab_env=$("$lab" env)
eval "$lab_env"
"$lab" check

step "tests"
# `--features lab` compiles the tests that need the lab (the `*_lab` modules of each crate's
# test binary): here they always run, and fail, never skip, when the lab is missing. It also
# builds the CLI with its fault points (MAILCAT_FAULT), which the kill tests
# (crates/mailcat/tests/it/fetch_lab.rs) need.
cargo test --workspace --features lab

step "fault run: 80 seeded faults between mailcat and the lab (docs/fault-run.md)"
# Resets, truncations mid-literal and mid-DATA, stalls, drips, duplicated and reordered chunks,
# an SMTP reply withheld after the final dot: each followed by a clean re-run, every invariant
# checked; any violation fails. The full run is `--faults 1100` (see docs/fault-run.md).
cargo build --quiet -p mailcat --features mailcat/fault-injection
cargo run --quiet -p mailcat-tests --bin fault_run -- --seed 1 --faults 80

step "the README's first command: tests/lab/lab.sh demo (check, send, list, fetch)"
"$lab" demo

if [ "$lab_started" = 1 ]; then
  step "mail-server lab: down"
  "$lab" down
  trap - EXIT
fi

step "interop: mailcat against Exim, Cyrus IMAP and Courier (tests/interop/run.sh)"
cargo build --quiet -p mailcat
tests/interop/run.sh --mailcat target/debug/mailcat

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  step "fuzz smoke run (${fuzz_seconds}s per target)"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  # cargo-fuzz needs nightly-only flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
  export RUSTC_BOOTSTRAP=1
  (cd fuzz && cargo fuzz build -s none)
  for target in $(cd fuzz && cargo fuzz list); do
    mkdir -p "fuzz/corpus/$target"
    work=$(mktemp -d)
    echo "--- $target"
    # New inputs go to a scratch directory so the committed seed corpus stays as it is.
    # The grep only filters the output; a crash is caught through the artifacts below.
    (
      cd fuzz
      # A target with a dictionary (fuzz/dicts/TARGET.dict) gets it: format words help
      # mutations past the syntax.
      dict=()
      if [ -f "dicts/$target.dict" ]; then dict=(-dict="dicts/$target.dict"); fi
      cargo fuzz run -s none "$target" "$work" "corpus/$target" -- "${dict[@]}" \
        -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)' || true
    )
    rm -rf "$work"
    # A crash leaves an artifact; fail loudly.
    if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/oom-* "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
      echo "fuzz target $target found a failing input: see fuzz/artifacts/$target" >&2
      exit 1
    fi
  done
fi

step "all checks passed"
