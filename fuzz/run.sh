#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) and prints executions and findings per target.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  log="artifacts/$target.log"
  mkdir -p artifacts
  if cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096 > "$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (see artifacts/$target/)"
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  echo "$target: $execs executions in ${seconds}s, $result"
done
