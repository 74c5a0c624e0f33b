#!/usr/bin/env bash
# Runs fuzz targets for N seconds each (default 60; every target, or the ones named) and prints
# executions and findings per target. Usage: fuzz/run.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p artifacts
for target in "${targets[@]}"; do
  log="artifacts/$target.log"
  if cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 \
    > "$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (see fuzz/artifacts/$target/ and $log)"
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n1 || true)
  echo "$target: ${execs:-?} executions in ${seconds}s, $result"
done
