#!/usr/bin/env bash
# Benchmarks hookrun's backup (gzip and zstd) against GNU `tar -czf`, `tar | pigz` and `tar | zstd`, and hookrun's
# restore (verification included) against `tar -xzf` of the same archive, on the deterministic data set of
# gen_data.py; interleaved rounds, medians; writes bench/RESULTS.md.
#
# Usage: bench/run.sh [--size-mib N (1024)] [--rounds N (3)] [--seed N (1)] [--work DIR] [--keep] [--out FILE]
#   --work DIR  where the data set, archives and extractions go (default: a new folder under ${TMPDIR:-/var/tmp});
#               a data set already there with the same size and seed is reused.
#   --keep      leave the work folder behind (the data set can then be reused with --work).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
command_line="bench/run.sh${*:+ $*}"
size_mib=1024 rounds=3 seed=1 work="" keep=0 out="$here/RESULTS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mib) size_mib=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------------------------------
missing=()
command -v pigz >/dev/null || missing+=(pigz)
command -v zstd >/dev/null || missing+=(zstd)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y "${missing[@]}" >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
fi

log "building hookrun (release)"
(cd "$repo" && cargo build --release -p hookrun >&2)
hookrun="${CARGO_TARGET_DIR:-$repo/target}/release/hookrun"
[ -x "$hookrun" ] || { echo "no hookrun binary at $hookrun" >&2; exit 1; }

# --- work folder and data set ----------------------------------------------------------------------------------------
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/hookrun-bench.XXXXXX")
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
if [ "$keep" -eq 0 ]; then
    trap 'rm -rf "$work"' EXIT
fi
data="$work/data"
stamp="size-mib=$size_mib seed=$seed"
# The stamp says which data set is there; the summary is what the generator printed for it (the report quotes it).
if [ "$(cat "$work/data.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$work/data.summary" ]; then
    rm -rf "$data" "$work/data.stamp"
    log "generating $size_mib MiB data set (seed $seed) in $data"
    python3 "$here/gen_data.py" "$data" --size-mib "$size_mib" --seed "$seed" >"$work/data.summary"
    echo "$stamp" >"$work/data.stamp"
fi
input_bytes=$(find "$data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
file_count=$(find "$data" -type f | wc -l)

# hookrun: a chain of one `backup` hook over the data set, one configuration per format. The restores read the
# catalogs these runs write.
write_config() { # NAME COMPRESSION LEVEL
    mkdir -p "$work/hookrun-$1"
    cat >"$work/hookrun-$1/hooks.toml" <<EOF
# The benchmark's chain: one backup of the data set, $2 level $3, no free-space margin, recorded in the catalog.
[runner]
work_dir = "$work"
storage_dir = "$work/outputs/hookrun-$1"
catalog = "$work/outputs/hookrun-$1/catalog.db"

[[hook]]
name = "backup"
builtin = "backup"
timeout = "4h"
[hook.config]
sources = ["data"]
compression = "$2"
compression_level = $3
min_free_factor = 0

[[hook]]
name = "record"
builtin = "record"
EOF
}
write_config gzip gzip 6
write_config zstd zstd 3
write_config zstd6 zstd 6

threads=$(nproc)
results="$work/results.tsv"
: >"$results"

# timed NAME ROUND OUTPUT CMD...: runs CMD under /usr/bin/time, records wall seconds, peak RSS and OUTPUT's size.
timed() {
    local name=$1 round=$2 output=$3
    shift 3
    local tf="$work/time.out"
    /usr/bin/time -f '%e %M' -o "$tf" "$@"
    local size=0
    if [ -n "$output" ]; then size=$(stat -c %s "$output"); fi
    read -r secs rss <"$tf"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$secs" "$rss" "$size" >>"$results"
    log "$name round $round: ${secs}s, peak RSS ${rss} KiB${output:+, $size bytes}"
}

log "warming the page cache (tar -cf - | cat)"
timed "read" 0 "" bash -c "tar -cf - -C '$work' data | cat >/dev/null"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Nothing is deleted until every round is done: deleting (with `discard`) slows what runs next, for minutes
# (measured here, 2026-11-26).
outputs="$work/outputs"
rm -rf "$outputs"
mkdir -p "$outputs"
archive=""
# hookrun_backup NAME ROUND: a backup with configuration NAME; sets `archive` to the archive it wrote.
hookrun_backup() {
    timed "hookrun-$1" "$2" "" bash -c "exec '$hookrun' --config '$work/hookrun-$1/hooks.toml' backup >'$work/hookrun.log' 2>&1" \
        || { cat "$work/hookrun.log" >&2; exit 1; }
    archive=$(ls -t "$outputs/hookrun-$1"/backup_*.tar.* 2>/dev/null | head -n 1)
    [ -n "$archive" ] || { echo "hookrun wrote no archive" >&2; cat "$work/hookrun.log" >&2; exit 1; }
    sed -i "\$s/\t0\$/\t$(stat -c %s "$archive")/" "$results"
}

# hookrun_restore NAME ROUND: restores the newest backup of configuration NAME, verification included, into a
# place that does not exist (as `tar -xzf` extracts into a new folder): the data set is renamed aside meanwhile,
# and the restored copy is renamed away after.
hookrun_restore() {
    local id
    id=$("$hookrun" --config "$work/hookrun-$1/hooks.toml" list --json | python3 -c 'import json,sys; print(max(b["id"] for b in json.load(sys.stdin)["backups"]))')
    mv "$data" "$work/data.aside"
    timed "restore-$1" "$2" "" bash -c "exec '$hookrun' --config '$work/hookrun-$1/hooks.toml' restore $id >'$work/hookrun.log' 2>&1" \
        || { mv "$work/data.aside" "$data"; cat "$work/hookrun.log" >&2; exit 1; }
    mv "$data" "$outputs/restored-$1-$2"
    mv "$work/data.aside" "$data"
}
put_back() { if [ -d "$work/data.aside" ] && [ ! -e "$data" ]; then mv "$work/data.aside" "$data"; fi; }
if [ "$keep" -eq 1 ]; then trap put_back EXIT; else trap 'put_back; rm -rf "$work"' EXIT; fi

for round in $(seq 1 "$rounds"); do
    hookrun_backup gzip "$round"
    gz_archive=$archive

    timed "gnu" "$round" "$outputs/gnu-$round.tar.gz" tar -czf "$outputs/gnu-$round.tar.gz" -C "$work" data

    timed "pigz" "$round" "$outputs/pigz-$round.tar.gz" \
        bash -c "tar -cf - -C '$work' data | pigz -p $threads -6 >'$outputs/pigz-$round.tar.gz'"

    # Into a new folder every time: extracting into one just emptied is several times slower (measured here,
    # 2026-11-26: the file system is still discarding what was deleted).
    target="$outputs/extract-$round"
    mkdir "$target"
    timed "extract" "$round" "" tar -xzf "$gz_archive" -C "$target"
    target="$outputs/extract-sync-$round"
    mkdir "$target"
    timed "extract-sync" "$round" "" bash -c "tar -xzf '$gz_archive' -C '$target' && sync"
    hookrun_restore gzip "$round"

    hookrun_backup zstd "$round"
    zst_archive=$archive
    timed "zstd" "$round" "$outputs/zstd-$round.tar.zst" \
        bash -c "tar -cf - -C '$work' data | zstd -q -T$threads -3 >'$outputs/zstd-$round.tar.zst'"
    target="$outputs/extract-zstd-$round"
    mkdir "$target"
    timed "extract-zstd" "$round" "" tar --zstd -xf "$zst_archive" -C "$target"
    hookrun_restore zstd "$round"

    hookrun_backup zstd6 "$round"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Check that every reader takes hookrun's last archives, and that the restores gave the data set back.
gzip -t "$gz_archive"
tar -tzf "$gz_archive" >/dev/null
zstd -q -t "$zst_archive"
tar --zstd -tf "$zst_archive" >/dev/null
for restored in "$outputs"/restored-*; do
    diff -r --no-dereference "$data" "$restored" >/dev/null || { echo "$restored differs from the data set" >&2; exit 1; }
done
rm -rf "$outputs"

# --- report ----------------------------------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
python3 - "$results" "$input_bytes" "$out" "$command_line" "$threads" "$cpu" "$mem" "$size_mib" "$seed" \
    "$file_count" "$(cat "$work/data.summary")" "$rounds" "$load_before" "$load_after" <<'EOF'
import statistics, sys, datetime
(results, input_bytes, out, command, threads, cpu, mem, size_mib, seed, files, summary, rounds, load_before,
 load_after) = sys.argv[1:]
input_bytes = int(input_bytes)
runs = {}
for line in open(results):
    name, rnd, secs, rss, size = line.split("\t")
    runs.setdefault(name, []).append((float(secs), int(rss), int(size)))

def row(name):
    r = runs[name]
    secs = statistics.median(s for s, _, _ in r)
    sizes = [z for _, _, z in r if z]
    return {
        "mbps": input_bytes / 1e6 / secs,
        "secs": secs,
        "all": ", ".join(f"{s:.2f}" for s, _, _ in r),
        "ratio": input_bytes / statistics.median(sizes) if sizes else None,
        "rss": max(m for _, m, _ in r) / 1024,
    }

labels = {
    "read": "`tar -cf - DIR \\| cat` (read limit, warm-up, once)",
    "hookrun-gzip": "hookrun `backup` (gzip level 6: libdeflate blocks on every core, SHA-256, fsync)",
    "gnu": "GNU `tar -czf` (gzip -6)",
    "pigz": f"`tar -cf - DIR \\| pigz -p {threads} -6`",
    "hookrun-zstd": "hookrun `backup` with `compression = \"zstd\"` (level 3, SHA-256, fsync)",
    "zstd": f"`tar -cf - DIR \\| zstd -T{threads} -3`",
    "hookrun-zstd6": "hookrun `backup` with `compression = \"zstd\"`, `compression_level = 6`",
    "extract": "`tar -xzf` hookrun's gzip archive into a new folder",
    "extract-sync": "`tar -xzf` into a new folder, then `sync` (durable, as a restore must be)",
    "restore-gzip": "hookrun `restore` of that archive (verification and sync included) into a new place",
    "extract-zstd": "`tar --zstd -xf` hookrun's zstd archive into a new folder",
    "restore-zstd": "hookrun `restore` of that archive (verification and sync included) into a new place",
}
rows = {name: row(name) for name in labels if name in runs}
lines = [
    "# Backup benchmark results",
    "",
    "Produced by `bench/run.sh` (see its header); rerun it to reproduce. Throughput is input bytes (the data set's",
    "file contents) over wall time, the median of the interleaved rounds; size ratio is input / archive bytes; peak",
    "RSS is `/usr/bin/time -f %M`, the largest single process (for a pipeline, its largest member).",
    "",
    f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
    f"- Command: `{command}`",
    f"- Machine: {threads} cores (`nproc`), {cpu}, {mem} RAM",
    f"- Data set: `bench/gen_data.py --size-mib {size_mib} --seed {seed}`: {input_bytes} bytes in {files} files "
    f"({summary.split(': ', 1)[1]}); warm page cache",
    f"- Rounds: {rounds}, interleaved (every command once per round, then the next round); load average before / after: "
    f"{load_before} / {load_after} (other work on the machine shows here)",
    "",
    "| command | median MB/s | runs (s) | size ratio | peak RSS (MiB) |",
    "| --- | ---: | --- | ---: | ---: |",
]
for name, label in labels.items():
    if name not in rows:
        continue
    r = rows[name]
    ratio = f"{r['ratio']:.3f}" if r["ratio"] else "–"
    lines.append(f"| {label} | {r['mbps']:.1f} | {r['all']} | {ratio} | {r['rss']:.0f} |")
h, g, p = rows["hookrun-gzip"], rows["gnu"], rows["pigz"]
z, zc, z6 = rows["hookrun-zstd"], rows["zstd"], rows["hookrun-zstd6"]
x, r, xz, rz = rows["extract"], rows["restore-gzip"], rows["extract-zstd"], rows["restore-zstd"]
xs = rows["extract-sync"]
lines += [
    "",
    f"- gzip: throughput hookrun / GNU **{h['mbps'] / g['mbps']:.2f}×**, hookrun / pigz **{h['mbps'] / p['mbps']:.2f}×**;"
    f" archive size hookrun / pigz {p['ratio'] / h['ratio']:.4f}, hookrun / GNU {g['ratio'] / h['ratio']:.4f}",
    f"- zstd: throughput hookrun / GNU `tar -czf` **{z['mbps'] / g['mbps']:.2f}×**, hookrun / `zstd -T{threads}`"
    f" {z['mbps'] / zc['mbps']:.2f}×; archive size hookrun zstd / GNU gzip -6 {g['ratio'] / z['ratio']:.4f};"
    f" at level 6: {z6['mbps'] / g['mbps']:.2f}× GNU, size {g['ratio'] / z6['ratio']:.4f} of gzip -6's",
    f"- restore (verification included) / `tar -xzf`: **{r['mbps'] / x['mbps']:.2f}×**"
    f" (/ `tar -xzf && sync`: {r['mbps'] / xs['mbps']:.2f}×);"
    f" zstd restore / `tar --zstd -xf`: {rz['mbps'] / xz['mbps']:.2f}×",
    "- hookrun's backup includes what the others skip: the free-space preflight's sample estimate, SHA-256 of the",
    "  archive, `fsync`, and the trailer check. Its last archives passed `gzip -t` / `tar -tzf` and `zstd -t` /",
    "  `tar --zstd -tf`; every restored copy equals the data set (`diff -r`).",
    "- hookrun's restore reads the archive once: it extracts into a staging folder beside the target while hashing",
    "  and counting (decompressing on one thread, writing files on another), compares SHA-256, size and counts with",
    "  the catalog, syncs the file system (big files start their writeback as soon as they are written) and renames",
    "  the folder into place.",
    "  The target does not exist here (the data set is renamed aside), as `tar -xzf` extracts into a new folder;",
    "  over live data the old copy is deleted after the services are back, which this does not time.",
    "- Every round's time is listed: an outlier (such as an extraction while the filesystem still discards what an",
    "  earlier run deleted) shows there, and the median leaves it out.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
log "wrote $out"
