#!/usr/bin/env bash
# benches/load.sh: the out-of-process load test (issue 27). The release binary (`replaydesk serve`, its
# job workers off: `queue.workers = 0`, so only the ingest path is measured, as in `cargo bench --bench
# ingest`) under wrk from Debian: first its no-op route (`GET /healthz`), then signed Slack slash
# commands, each stored durably before its 200, in the same run on the same machine; the ratio is the
# figure to compare, with p50/p99 from wrk's --latency and the server's peak RSS (VmHWM).
#
# Usage: benches/load.sh [sqlite|postgres] [SECONDS (10)] [CONNECTIONS (64)]
#   LOAD_PERF=FILE: also record a profile of the server (perf, call graphs) during the ingest run;
#   LOAD_PERF_CALL_GRAPH=dwarf unwinds with DWARF (the release binary has no frame pointers; default fp);
#   benches/profile-split.py FILE… turns such profiles into the split by part (signature, SQL, …).
#   LOAD_SMAPS=FILE: keep the server's /proc/PID/smaps at the end of the ingest run.
#   LOAD_BINARY=PATH: drive that binary instead of building this checkout's (an A/B of two builds).
#   LOAD_COLD=1: empty the page cache first (root only), so the binary is read from disk as when a
#   server starts, and its resident code is what was run and its neighbours, whatever wrote the file
#   last (a binary just built or copied is all in the page cache, and more of it gets mapped).
#   PostgreSQL: REPLAYDESK_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test); a
#   database replaydesk_load is created afresh and dropped.
# Needs: wrk (apt-get install wrk; installed here when run as root), python3, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${1:-sqlite}
LENGTH=${2:-10}
CONNECTIONS=${3:-64}
THREADS=2
SECRET=load-test-signing-secret

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is needed: apt-get install wrk" >&2
    exit 1
  fi
fi
BINARY=${LOAD_BINARY:-target/release/replaydesk}
[ -n "${LOAD_BINARY:-}" ] || cargo build --release --locked --bin replaydesk >&2

WORK=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  if [ "$STORE" = postgres ]; then psql "$ADMIN" -qc "DROP DATABASE IF EXISTS replaydesk_load" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
case "$STORE" in
  sqlite) URL="sqlite://$WORK/replaydesk.db" ;;
  postgres)
    ADMIN=${REPLAYDESK_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
    psql "$ADMIN" -qc "DROP DATABASE IF EXISTS replaydesk_load" >/dev/null
    psql "$ADMIN" -qc "CREATE DATABASE replaydesk_load" >/dev/null
    URL="${ADMIN%/*}/replaydesk_load"
    ;;
  *) echo "usage: benches/load.sh [sqlite|postgres] [SECONDS] [CONNECTIONS]" >&2; exit 2 ;;
esac
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/replaydesk.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[store]
url = "$URL"
[queue]
workers = 0
[fullstory]
api_key = "na1.load"
base_url = "http://127.0.0.1:9"
[slack]
signing_secret = "$SECRET"
bot_token = "xoxb-load"
response_url_hosts = ["127.0.0.1"]
[limits]
per_source_per_minute = 1000000000
per_source_burst = 1000000000
[privacy]
audit_key = "load-audit-key"
[log]
level = "warn"
TOML
if [ -n "${LOAD_COLD:-}" ]; then
  sync
  if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    echo "LOAD_COLD: cannot empty the page cache (needs root)" >&2
    exit 1
  fi
fi
"$BINARY" --config "$WORK/replaydesk.toml" serve 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

# Enough signed commands, each with its own trigger_id, for 60,000 a second over the whole run.
COUNT=$((60000 * LENGTH))
python3 - "$SECRET" "$COUNT" >"$WORK/requests.tsv" <<'PY'
import hashlib, hmac, sys, time, urllib.parse
secret, count = sys.argv[1].encode(), int(sys.argv[2])
ts = str(int(time.time()))
for n in range(count):
    body = urllib.parse.urlencode([
        ("team_id", "T0LOAD"), ("channel_id", "C0LOAD"), ("user_id", "U0LOAD"), ("command", "/replays"),
        ("text", "jane@acme.com"), ("response_url", "http://127.0.0.1:9/response"),
        ("trigger_id", f"{n}.{ts}.load"),
    ])
    sig = "v0=" + hmac.new(secret, f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    print(f"{ts}\t{sig}\t{body}")
PY

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"${LENGTH}s" --latency "$@"; }
rate() { awk '/^Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }
# The server's own CPU time (user + system, in clock ticks) around each run: CPU per request is the
# figure least moved by whatever else the machine runs.
ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
T0=$(ticks)
run "http://127.0.0.1:$PORT/healthz" >"$WORK/noop.txt"
T1=$(ticks)
PERF=
if [ -n "${LOAD_PERF:-}" ]; then
  # A profile of the server during the ingest run (perf from Debian's linux-perf): perf report -i "$LOAD_PERF".
  perf record -F 499 --call-graph "${LOAD_PERF_CALL_GRAPH:-fp}" -p "$SERVER" -o "$LOAD_PERF" -- sleep "$LENGTH" >/dev/null 2>&1 &
  PERF=$!
fi
LOAD_REQUESTS="$WORK/requests.tsv" LOAD_THREADS=$THREADS run -s benches/load.lua \
  "http://127.0.0.1:$PORT/slack/commands" >"$WORK/ingest.txt"
T2=$(ticks)
[ -n "$PERF" ] && wait "$PERF"
curl -fs "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
STORED=$(awk '/^replaydesk_queue_enqueued_total/ {print $2}' "$WORK/metrics.txt")
# Deliveries per group commit (one transaction, one disk flush each), on average.
BATCH=$(awk '/^replaydesk_queue_commit_batch_size_sum/ {s = $2} /^replaydesk_queue_commit_batch_size_count/ {c = $2}
  END {if (c > 0) printf "%.1f", s / c; else print "?"}' "$WORK/metrics.txt")
RSS=$(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER/status")
# What is resident at the end of the run, by kind: the heap and stacks (anonymous) against the binary's
# and libraries' pages (file) and SQLite's shared-memory index (shmem).
SPLIT=$(awk '/^Rss(Anon|File|Shmem):/ {sub(/^Rss/, "", $1); printf "%s%s %s kB", sep, tolower($1), $2; sep = ", "}' "/proc/$SERVER/status")

NOOP=$(rate "$WORK/noop.txt")
INGEST=$(rate "$WORK/ingest.txt")
HZ=$(getconf CLK_TCK)
# Server CPU µs per request: ticks ÷ HZ ÷ (rate × seconds) × 10⁶.
cpu() { python3 -c "print(f'{($2 - $1) / $HZ / ($3 * $LENGTH) * 1e6:.1f}')"; }
echo "| store | connections | no-op req/s | ingest req/s | ratio | no-op p50/p99 | ingest p50/p99 | server CPU µs/request no-op / ingest | stored | deliveries per commit | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '| %s | %s | %s | %s | %.2f | %s / %s | %s / %s | %s / %s | %s | %s | %s |\n' "$STORE" "$CONNECTIONS" "$NOOP" "$INGEST" \
  "$(python3 -c "print($INGEST / $NOOP)")" "$(pct "$WORK/noop.txt" 50%)" "$(pct "$WORK/noop.txt" 99%)" \
  "$(pct "$WORK/ingest.txt" 50%)" "$(pct "$WORK/ingest.txt" 99%)" "$(cpu "$T0" "$T1" "$NOOP")" \
  "$(cpu "$T1" "$T2" "$INGEST")" "${STORED:-?}" "$BATCH" "$RSS"
echo "resident at the end: $SPLIT"
# LOAD_SMAPS=FILE: the server's memory map at the end of the run, mapping by mapping (what is resident where).
[ -z "${LOAD_SMAPS:-}" ] || cp "/proc/$SERVER/smaps" "$LOAD_SMAPS"
for file in noop ingest; do
  if [ -n "$(errors "$WORK/$file.txt")" ]; then echo "$file: $(errors "$WORK/$file.txt")"; fi
done
