#!/usr/bin/env bash
# Measures the services' downtime (first stop to last service running again) of a backup of a Compose project whose
# service owns the bench data set (bind-mounted) and keeps changing 1 % of its files (every 100th file by name, its
# first 8 bytes overwritten with a counter, file after file, as long as it runs), with the plain chain (stop → backup
# → record → start) and with the minimal-downtime chain (stop → snapshot → start → backup → record), in interleaved
# rounds; appends the result to bench/RESULTS.md. It measures on the file system of DIR (ext4 here: the snapshot
# pre-copies), and with --xfs also on an XFS file system with reflink (a loop-mounted image file the script makes;
# needs root), where the snapshot clones files instead.
# With --upload it also runs the plain chain with an `upload` hook after `start` to a local S3 server (SeaweedFS,
# bench/weed.sh): the upload must add nothing to the downtime.
# With --restore it measures `hookrun restore` of a backup of the data set over the live data against
# `docker stop; rm -rf data; tar -xzf archive; docker start` of the same archive, in interleaved rounds.
#
# Usage: bench/downtime.sh [--work DIR] [--rounds N (3)] [--xfs] [--upload] [--restore] [--no-backup]
#   DIR holds data/ from gen_data.py (default /var/tmp/hookrun-bench-1g; bench/run.sh --work DIR --keep makes it).
#   --no-backup  leaves out the backup chains (with --restore: only the restores).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
command_line="bench/downtime.sh${*:+ $*}"
work=/var/tmp/hookrun-bench-1g rounds=3 xfs=0 upload=0 restore=0 backups=1
while [ $# -gt 0 ]; do
    case "$1" in
        --restore) restore=1; shift ;;
        --no-backup) backups=0; shift ;;
        --work) work=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --xfs) xfs=1; shift ;;
        --upload) upload=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -d "$work/data" ] || { echo "no data set in $work/data: run bench/run.sh --work $work --keep first" >&2; exit 2; }
log() { printf '[downtime %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cd "$repo"
# The test image holds Debian's busybox-static.
[ -x /bin/busybox ] || apt-get install -y busybox-static >/dev/null
cargo build --release --quiet -p hookrun -p hookrun-e2e --bin hookrun --bin hookrun-test-image
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
"$bin/hookrun-test-image" >/dev/null
hookrun=$bin/hookrun
project=hookrun-downtime
results=$(mktemp)
mnt=""
base=$work
weed_pid=""
cleanup() {
    [ -z "$weed_pid" ] || kill "$weed_pid" 2>/dev/null || true
    docker-compose -p $project -f "$base/docker-compose.yml" down -t 1 >/dev/null 2>&1 || true
    if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || true; rm -rf "$mnt" "$mnt.img"; fi
    rm -f "$results"
}
trap cleanup EXIT

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
upload_hook='[[hook]]
name = "upload"
builtin = "upload"
'
if [ "$upload" -eq 1 ]; then
    # shellcheck source=bench/weed.sh
    . "$repo/bench/weed.sh"
    mkdir -p "$work/weed-downtime"
    start_weed "$work/weed-downtime" downtime
    export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret
    log "weed mini on $endpoint"
fi
# remote PREFIX: a [[remote]] table on that server.
remote() { printf '\n[[remote]]\nname = "bench"\nurl = "s3://downtime/%s"\nendpoint = "%s"\n' "$1" "$endpoint"; }
snapshot='[[hook]]
name = "snapshot"
builtin = "snapshot"
config = { backup = "backup" }
'

# run_chain FS NAME ROUND HOOKS: one backup of the project in $base; appends "FS NAME downtime whole status mode"
# (mode: what the snapshot did, `copy` or `in place`; `-` without one).
run_chain() {
    local dir="$base/downtime-$2"
    rm -rf "$dir" && mkdir -p "$dir"
    printf '[runner]\nproject = "%s"\nwork_dir = "%s"\nstorage_dir = "%s/storage"\n\n%s' "$project" "$base" "$dir" "$4" >"$dir/hooks.toml"
    "$hookrun" --config "$dir/hooks.toml" backup --version 1 --json >"$dir/report.json"
    python3 - "$dir/report.json" "$1" "$2" >>"$results" <<'PY'
import json, sys
from datetime import datetime
r = json.load(open(sys.argv[1]))
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
s = r["services"]
down = max(t(x["started_at"]) for x in s) - min(t(x["stopped_at"]) for x in s)
mode = next((h["outputs"]["mode"] for h in r["hooks"] if "mode" in (h.get("outputs") or {})), "-")
# An upload that failed (on_error = continue) would leave the run completed: it must not count as an upload run.
upload = [h for h in r["hooks"] if h["hook_type"] == "upload"]
if upload and upload[0]["status"] != "completed":
    sys.exit(f"the upload did not complete: {upload[0]}")
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{down:.2f}\t{r['duration_ms'] / 1000:.2f}\t{r['status']}\t{mode}")
PY
    tail -n 1 "$results" | { IFS=$'\t' read -r fs name down whole status mode; log "$fs $name round $3: downtime ${down}s, run ${whole}s, $status, snapshot: $mode"; }
    rm -rf "$dir"
    # Backups are hours apart, not seconds: let the file system finish with what this run wrote and deleted (on a
    # `discard` mount, ext4 trims deleted blocks at its next journal commit and new writes wait behind it).
    sync
}

# up: the project in $base, its service bind-mounting $base/data and changing 1 % of its files while it runs.
up() {
    (cd "$base/data" && find . -type f ! -name '.*' | LC_ALL=C sort | awk 'NR % 100 == 0') >"$base/writer.list"
    log "the writer changes $(wc -l <"$base/writer.list") of $(cd "$base/data" && find . -type f | wc -l) files"
    # `$$` is Compose's escape for the shell's `$`.
    cat >"$base/docker-compose.yml" <<'YAML'
version: "2.4"
services:
  app:
    image: hookrun-test-busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$$((i + 1)); while read -r f; do printf '%08d' $$i | dd of=/srv/data/$$f bs=8 count=1 conv=notrunc 2>/dev/null; done < /srv/writer.list; done"]
    volumes: ["./data:/srv/data", "./writer.list:/srv/writer.list:ro"]
YAML
    docker-compose -p $project -f "$base/docker-compose.yml" up -d >/dev/null
}

down() {
    docker-compose -p $project -f "$base/docker-compose.yml" down -t 1 >/dev/null
    rm -f "$base/docker-compose.yml" "$base/writer.list"
}

# measure FS: rounds of both chains, interleaved.
measure() {
    up
    for round in $(seq 1 "$rounds"); do
        run_chain "$1" plain "$round" "$stop$backup$record$start"
        run_chain "$1" snapshot "$round" "$stop$snapshot$start$backup$record"
        if [ "$upload" -eq 1 ]; then
            run_chain "$1" upload "$round" "$stop$backup$record$start$upload_hook$(remote "r$round-$RANDOM")"
        fi
    done
    down
}

# measure_restore FS: one backup of the data set, then rounds of `hookrun restore` of it and of the plain
# stop, rm -rf, tar -xzf, start, interleaved; appends "FS NAME downtime whole status -" to $results.
measure_restore() {
    up
    local dir="$base/downtime-restore"
    rm -rf "$dir" && mkdir -p "$dir"
    printf '[runner]\nproject = "%s"\nwork_dir = "%s"\nstorage_dir = "%s/storage"\n\n%s%s%s%s' "$project" "$base" "$dir" \
        "$stop" '[[hook]]
name = "backup"
builtin = "backup"
config = { sources = ["data"], min_free_factor = 0 }
' "$record" "$start" >"$dir/hooks.toml"
    "$hookrun" --config "$dir/hooks.toml" backup --version 1 --json >"$dir/backup.json"
    local archive
    archive=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup"]["path"])' "$dir/backup.json")
    log "restoring $archive ($(du -h "$archive" | cut -f1))"
    for round in $(seq 1 "$rounds"); do
        "$hookrun" --config "$dir/hooks.toml" restore 1 --yes --json >"$dir/restore.json"
        python3 - "$dir/restore.json" "$1" >>"$results" <<'PY'
import json, sys
from datetime import datetime
r = json.load(open(sys.argv[1]))
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
s = r["services"]
down = max(t(x["started_at"]) for x in s) - min(t(x["stopped_at"]) for x in s)
print(f"{sys.argv[2]}\trestore\t{down:.2f}\t{r['duration_ms'] / 1000:.2f}\t{r['status']}\t-")
PY
        tail -n 1 "$results" | { IFS=$'\t' read -r fs name down whole status mode; log "$fs hookrun restore round $round: downtime ${down}s, run ${whole}s, $status"; }
        sync
        local cid t0 t1 t2
        cid=$(docker-compose -p $project -f "$base/docker-compose.yml" ps -q app)
        t0=$(date +%s.%N)
        docker stop -t 10 "$cid" >/dev/null
        t1=$(date +%s.%N)
        rm -rf "$base/data"
        tar -xzf "$archive" -C "$base"
        docker start "$cid" >/dev/null
        t2=$(date +%s.%N)
        python3 -c "print(f'$1\ttar\t{$t2 - $t1:.2f}\t{$t2 - $t0:.2f}\tcompleted\t-')" >>"$results"
        tail -n 1 "$results" | { IFS=$'\t' read -r fs name down whole status mode; log "$fs stop; rm -rf; tar -xzf; start round $round: downtime ${down}s"; }
        sync
    done
    rm -rf "$dir"
    down
}

fs_work=$(findmnt -n -o FSTYPE --target "$work" 2>/dev/null || stat -f -c %T "$work")
[ "$backups" -eq 0 ] || measure "$fs_work"
[ "$restore" -eq 0 ] || measure_restore "$fs_work"
if [ "$xfs" -eq 1 ]; then
    command -v mkfs.xfs >/dev/null || apt-get install -y xfsprogs >/dev/null
    mnt=$(mktemp -d "${TMPDIR:-/var/tmp}/hookrun-xfs.XXXXXX")
    truncate -s 4G "$mnt.img"
    mkfs.xfs -q -m reflink=1 "$mnt.img"
    mount -o loop "$mnt.img" "$mnt"
    log "copying the data set onto XFS (reflink) at $mnt"
    cp -a "$work/data" "$mnt/data"
    base=$mnt
    measure "xfs (reflink)"
    base=$work
fi

bytes=$(du -sb "$work/data" | cut -f1)
python3 - "$results" "$command_line" "$((bytes / 1048576))" "$rounds" <<'PY' | tee -a bench/RESULTS.md
import statistics, sys, datetime
results, command, mib, rounds = sys.argv[1:]
runs = {}
for line in open(results):
    fs, name, down, whole, status, mode = line.rstrip("\n").split("\t")
    runs.setdefault((fs, name), []).append((float(down), float(whole), status, mode))
print()
print(f"## Downtime ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, `{command}`)")
print()
print(f"One Compose service bind-mounting the data set ({mib} MiB) and changing 1 % of its files as long as it runs;")
print("downtime is the first stop to the moment the last service is first seen running again (the start hook's 1 s")
print(f"settle check comes after; for the tar row, `docker stop` returning to `docker start` returning); median of {rounds}")
print("interleaved rounds.")
print()
print("| file system | chain | snapshot | downtime (s) | runs (s) | whole run (s) | status |")
print("| --- | --- | --- | ---: | --- | ---: | --- |")
chains = {
    "plain": "stop → backup → record → start",
    "snapshot": "stop → snapshot → start → backup → record",
    "upload": "stop → backup → record → start → upload",
    "restore": "`hookrun restore` over the live data (extract beside, stop, swap, start, remove the old tree)",
    "tar": "`docker stop; rm -rf data; tar -xzf ARCHIVE; docker start`",
}
medians = {}
for (fs, name), r in runs.items():
    down = statistics.median(d for d, _, _, _ in r)
    medians[(fs, name)] = down
    whole = statistics.median(w for _, w, _, _ in r)
    statuses = ", ".join(sorted({s for _, _, s, _ in r}))
    modes = ", ".join(sorted({m for _, _, _, m in r}))
    runs_s = ", ".join(f"{d:.2f}" for d, _, _, _ in r)
    print(f"| {fs} | {chains[name]} | {modes} | {down:.2f} | {runs_s} | {whole:.2f} | {statuses} |")
print()
for fs in dict.fromkeys(fs for fs, _ in runs):
    if (fs, "snapshot") in medians:
        ratio = medians[(fs, "snapshot")] / medians[(fs, "plain")]
        print(f"- {fs}: downtime with the snapshot **{ratio:.2f}×** the plain window.")
    if (fs, "restore") in medians:
        ratio = medians[(fs, "restore")] / medians[(fs, "tar")]
        print(f"- {fs}: downtime of `hookrun restore` **{ratio:.2f}×** that of stop, rm -rf, tar -xzf, start.")
    if (fs, "upload") in medians:
        ratio = medians[(fs, "upload")] / medians[(fs, "plain")]
        print(f"- {fs}: downtime with an upload after the start **{ratio:.2f}×** the plain window (the upload runs after it).")
PY
