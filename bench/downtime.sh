#!/usr/bin/env bash
# Measures the services' downtime (first stop to last service running again) of a backup of a Compose project whose
# service owns the bench data set (bind-mounted), with the plain chain (stop → backup → record → start) and with
# the minimal-downtime chain (stop → snapshot → start → backup → record); appends the result to bench/RESULTS.md.
#
# Usage: bench/downtime.sh [--work DIR]   (DIR holds data/ from gen_data.py; default /var/tmp/hookrun-bench-1g)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=/var/tmp/hookrun-bench-1g
[ "${1:-}" = "--work" ] && work=$2
[ -d "$work/data" ] || { echo "no data set in $work/data: run bench/run.sh --work $work --keep first" >&2; exit 2; }
cd "$repo"
cargo build --release --quiet -p hookrun -p hookrun-e2e --bin hookrun --bin hookrun-test-image
target/release/hookrun-test-image >/dev/null
hookrun=$repo/target/release/hookrun
project=hookrun-downtime
cat > "$work/docker-compose.yml" <<YAML
version: "2.4"
services:
  app:
    image: hookrun-test-busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    volumes: ["./data:/srv/data"]
YAML
trap 'docker-compose -p $project -f "$work/docker-compose.yml" down -t 1 >/dev/null 2>&1 || true; rm -f "$work/docker-compose.yml"' EXIT
docker-compose -p $project -f "$work/docker-compose.yml" up -d >/dev/null

run_chain() { # $1 = name, $2 = hooks
  local dir="$work/downtime-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  printf '[runner]\nproject = "%s"\nwork_dir = "%s"\nstorage_dir = "%s/storage"\n\n%s' "$project" "$work" "$dir" "$2" > "$dir/hooks.toml"
  "$hookrun" --config "$dir/hooks.toml" backup --version 1 --json > "$dir/report.json"
  python3 - "$dir/report.json" <<'PY'
import json, sys
from datetime import datetime
r = json.load(open(sys.argv[1]))
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
s = r["services"]
down = max(t(x["started_at"]) for x in s) - min(t(x["stopped_at"]) for x in s)
print(f"{down:.2f} {r['duration_ms'] / 1000:.2f} {r['status']}")
PY
}
stop='[[hook]]
name = "stop"
builtin = "stop"
'
backup='[[hook]]
name = "backup"
builtin = "backup"
config = { volumes = "auto", min_free_factor = 0 }
'
record='[[hook]]
name = "record"
builtin = "record"
'
start='[[hook]]
name = "start"
builtin = "start"
'
snapshot='[[hook]]
name = "snapshot"
builtin = "snapshot"
config = { backup = "backup" }
'
read -r plain_down plain_total plain_status < <(run_chain plain "$stop$backup$record$start")
read -r snap_down snap_total snap_status < <(run_chain snapshot "$stop$snapshot$start$backup$record")
ratio=$(python3 -c "print(f'{$snap_down / $plain_down:.2f}')")
bytes=$(du -sb "$work/data" | cut -f1)
{
  echo
  echo "## Downtime ($(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/downtime.sh --work $work\`)"
  echo
  echo "One Compose service bind-mounting the data set ($((bytes / 1048576)) MiB); downtime is the first stop to the last service running again."
  echo
  echo "| chain | downtime (s) | whole run (s) | status |"
  echo "| --- | ---: | ---: | --- |"
  echo "| stop → backup → record → start | $plain_down | $plain_total | $plain_status |"
  echo "| stop → snapshot → start → backup → record | $snap_down | $snap_total | $snap_status |"
  echo
  echo "- Downtime with the snapshot: **${ratio}×** the plain window."
} | tee -a bench/RESULTS.md
rm -rf "$work/downtime-plain" "$work/downtime-snapshot"
