#!/usr/bin/env bash
# Benchmarks hookrun's backup against GNU `tar -czf` and `tar | pigz`, and `tar -xzf` of hookrun's archive, on the
# deterministic data set of gen_data.py; interleaved rounds, medians; writes bench/RESULTS.md.
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
if [ "$(cat "$work/data.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$data" "$work/data.stamp"
    log "generating $size_mib MiB data set (seed $seed) in $data"
    python3 "$here/gen_data.py" "$data" --size-mib "$size_mib" --seed "$seed" >"$work/data.summary"
    echo "$stamp" >"$work/data.stamp"
fi
input_bytes=$(find "$data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
file_count=$(find "$data" -type f | wc -l)

# hookrun: a chain of one `backup` hook over the data set.
mkdir -p "$work/hookrun"
cat >"$work/hookrun/hooks.toml" <<EOF
# The benchmark's chain: one backup of the data set, gzip level 6, no free-space margin.
[runner]
work_dir = "$work"
storage_dir = "$work/outputs/hookrun-storage"
catalog = "$work/hookrun/catalog.db"

[[hook]]
name = "backup"
builtin = "backup"
timeout = "4h"
[hook.config]
sources = ["data"]
compression_level = 6
min_free_factor = 0
EOF

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
# Nothing is deleted until every round is done: deleting (with `discard`) slows what runs next (DESIGN §9).
outputs="$work/outputs"
rm -rf "$outputs"
mkdir -p "$outputs"
storage="$outputs/hookrun-storage"
archive=""
for round in $(seq 1 "$rounds"); do
    timed "hookrun" "$round" "" bash -c "exec '$hookrun' --config '$work/hookrun/hooks.toml' backup >'$work/hookrun.log' 2>&1" \
        || { cat "$work/hookrun.log" >&2; exit 1; }
    archive=$(ls -t "$storage"/*.tar.gz 2>/dev/null | head -n 1)
    [ -n "$archive" ] || { echo "hookrun wrote no archive" >&2; cat "$work/hookrun.log" >&2; exit 1; }
    sed -i "\$s/\t0\$/\t$(stat -c %s "$archive")/" "$results"

    timed "gnu" "$round" "$outputs/gnu-$round.tar.gz" tar -czf "$outputs/gnu-$round.tar.gz" -C "$work" data

    timed "pigz" "$round" "$outputs/pigz-$round.tar.gz" \
        bash -c "tar -cf - -C '$work' data | pigz -p $threads -6 >'$outputs/pigz-$round.tar.gz'"

    # Into a new folder every time: extracting into one just emptied is several times slower (DESIGN §9).
    target="$outputs/extract-$round"
    mkdir "$target"
    timed "extract" "$round" "" tar -xzf "$archive" -C "$target"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Check that every reader takes hookrun's last archive.
gzip -t "$archive"
tar -tzf "$archive" >/dev/null
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
    "hookrun": "hookrun `backup` (ParallelGzip level 6, SHA-256, fsync)",
    "gnu": "GNU `tar -czf` (gzip -6)",
    "pigz": f"`tar -cf - DIR \\| pigz -p {threads} -6`",
    "extract": "`tar -xzf` hookrun's archive into a new folder",
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
    f"- Rounds: {rounds}, interleaved (hookrun, GNU, pigz, extract, then again); load average before / after: "
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
h, g, p = rows["hookrun"], rows["gnu"], rows["pigz"]
lines += [
    "",
    f"- Throughput hookrun / GNU: **{h['mbps'] / g['mbps']:.2f}×**; hookrun / pigz: **{h['mbps'] / p['mbps']:.2f}×**",
    f"- Size ratio hookrun / GNU: {h['ratio'] / g['ratio']:.3f}; hookrun / pigz: {h['ratio'] / p['ratio']:.3f}",
    "- hookrun's run includes what the others skip: the free-space preflight's sample estimate, SHA-256 of the",
    "  archive, `fsync`, and the trailer check. Its last archive passed `gzip -t` and `tar -tzf`.",
    "- Every round's time is listed: an outlier (such as an extraction while the filesystem still discards what an",
    "  earlier run deleted, DESIGN §9) shows there, and the median leaves it out.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
log "wrote $out"
