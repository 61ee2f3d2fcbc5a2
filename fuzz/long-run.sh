#!/usr/bin/env bash
# The long fuzz run of issue 13: each target (all of them, or those named) until 10 million
# executions or 30 minutes, one after the other, at low priority on one core.
#   fuzz/long-run.sh [TARGET...]        WORK=dir (default /tmp/mailcat-fuzz) keeps the grown
#                                       corpora, logs (TARGET/fuzz-0.log) and any artifact.
# Afterwards, merge a grown corpus into the committed one, minimised:
#   cd fuzz && cargo fuzz cmin -s none TARGET   (after copying WORK/TARGET/corpus/* into corpus/TARGET)
# A summary line per target goes to WORK/summary.txt.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
work="${WORK:-/tmp/mailcat-fuzz}"
runs="${RUNS:-10000000}"
seconds="${SECONDS_PER_TARGET:-1800}"
# BIN=dir runs binaries built earlier (the release directory of `cargo fuzz build -s none`).
if [ -n "${BIN:-}" ]; then
  bin="$BIN"
else
  cargo fuzz build -s none >/dev/null
  bin="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release"
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(cargo fuzz list); fi
mkdir -p "$work"
for target in "${targets[@]}"; do
  dir="$work/$target"
  mkdir -p "$dir/corpus"
  dict=()
  if [ -f "dicts/$target.dict" ]; then dict=(-dict="$PWD/dicts/$target.dict"); fi
  start=$(date +%s)
  (cd "$dir" && nice -n 10 "$bin/$target" -jobs=1 -workers=1 "${dict[@]}" \
    -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" corpus "$OLDPWD/corpus/$target" \
    >"$dir/run.log" 2>&1) || true
  end=$(date +%s)
  log="$dir/fuzz-0.log"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo 'cov: ? ft: ?')
  crashes=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  echo "$target execs=$execs seconds=$((end - start)) $last grown=$(ls "$dir/corpus" | wc -l) crashes=$crashes" | tee -a "$work/summary.txt"
done
