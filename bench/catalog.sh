#!/usr/bin/env bash
# Times hookrun's catalog commands on a generated catalog of many backups against `sqlite3 -json` dumping the same
# table, and `show` on it against `show` on a catalog of 10 backups, in interleaved rounds; appends the result to
# bench/RESULTS.md.
#
# The catalogs are made by hookrun itself (one real backup of a small tree, recorded), then grown by copying that
# backup's rows (its run, hook results, trees) in SQL: every backup of the big catalog is as real a row as the first,
# an hour older than the one after it; one in ten has a remote copy. Their archives do not exist (list names none
# missing: only archives in storage that the catalog does not know are looked for).
#
# Usage: [HOOKRUN=BINARY] bench/catalog.sh [--backups N (100000)] [--rounds N (5)] [--work DIR] [--out FILE (bench/RESULTS.md)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
command_line="bench/catalog.sh${*:+ $*}"
count=100000 rounds=5 work="" out="$here/RESULTS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --backups) count=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { printf '[catalog %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
command -v sqlite3 >/dev/null || apt-get install -y sqlite3 >/dev/null

# HOOKRUN=PATH: measure that binary instead of building this checkout's.
hookrun=${HOOKRUN:-}
if [ -z "$hookrun" ]; then
    (cd "$repo" && cargo build --release --quiet -p hookrun)
    hookrun="${CARGO_TARGET_DIR:-$repo/target}/release/hookrun"
fi
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/hookrun-catalog.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

# make NAME BACKUPS: $work/NAME/hooks.toml and a catalog of BACKUPS backups.
make() {
    local dir="$work/$1"
    rm -rf "$dir" && mkdir -p "$dir/data"
    printf 'a table\n' >"$dir/data/table.dat"
    printf '[runner]\nversion = "1"\nwork_dir = "."\nstorage_dir = "storage"\ncatalog = "catalog.db"\n\n[[hook]]\nname = "backup"\nbuiltin = "backup"\nconfig = { sources = ["data"] }\n\n[[hook]]\nname = "record"\nbuiltin = "record"\n' >"$dir/hooks.toml"
    "$hookrun" --config "$dir/hooks.toml" backup --version 1 >/dev/null
    python3 - "$dir/catalog.db" "$2" <<'PY'
import sqlite3, sys
path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
(backup, run) = db.execute("SELECT id, run_id FROM backups").fetchone()
cols = lambda table: [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
shift = lambda col: f"strftime('%Y-%m-%dT%H:%M:%fZ', {col}, printf('-%d hours', {count} - x))"
def copy(table, key, keyval, changes):
    c = cols(table)
    select = ", ".join(changes.get(col, col) for col in c)
    db.execute(
        f"WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < {count - 1}) "
        f"INSERT INTO {table} ({', '.join(c)}) SELECT {select} FROM {table}, k WHERE {key} = {keyval}"
    )
# Copies x = 1 .. count-1 are older than the template, x = 1 the oldest: ids ascend with time but for the first.
copy("runs", "id", run, {"id": f"{run} + x", "started_at": shift("started_at"), "finished_at": shift("finished_at")})
copy("hook_results", "run_id", run, {"run_id": f"{run} + x", "started_at": shift("started_at")})
copy("backups", "id", backup, {
    "id": f"{backup} + x", "run_id": f"{run} + x", "created_at": shift("created_at"),
    "path": "replace(path, '.tar.gz', '-' || x || '.tar.gz')",
    "sha256": "lower(hex(randomblob(32)))", "size": "size + x % 1000",
})
copy("backup_sources", "backup_id", backup, {"backup_id": f"{backup} + x"})
db.execute(
    "INSERT INTO copies (backup_id, location, key, size, sha256, encrypted, uploaded_at, duration_ms) "
    "SELECT id, 'offsite', 'hookrun/' || id || '.tar.gz', size, sha256, 0, created_at, 1000 FROM backups "
    "WHERE id % 10 = 0"
)
db.commit()
n = db.execute("SELECT count(*) FROM backups").fetchone()[0]
assert n == count, (n, count)
db.execute("VACUUM")
PY
}
log "making a catalog of $count backups and one of 10"
make big "$count"
make small 10
big=$work/big small=$work/small
newest_big=$(sqlite3 "$big/catalog.db" "SELECT max(id) FROM backups")
newest_small=$(sqlite3 "$small/catalog.db" "SELECT max(id) FROM backups")

# time_of CMD...: wall seconds of one run (output to /dev/null), or the exit code if it failed.
time_of() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "command failed: $*" >&2; exit 1; }
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.4f}')"
}
declare -A runs
names=(sqlite3 list show-big show-small prune)
for round in $(seq 1 "$rounds"); do
    runs[sqlite3]+=" $(time_of sqlite3 -json "$big/catalog.db" "SELECT * FROM backups")"
    runs[list]+=" $(time_of "$hookrun" --config "$big/hooks.toml" list --json)"
    runs[show-big]+=" $(time_of "$hookrun" --config "$big/hooks.toml" show "$newest_big" --json)"
    runs[show-small]+=" $(time_of "$hookrun" --config "$small/hooks.toml" show "$newest_small" --json)"
    runs[prune]+=" $(time_of "$hookrun" --config "$big/hooks.toml" prune --dry-run --keep-last 10)"
    log "round $round: ${runs[sqlite3]##* } ${runs[list]##* } ${runs[show-big]##* } ${runs[show-small]##* } ${runs[prune]##* }"
done
kept=$("$hookrun" --config "$big/hooks.toml" prune --dry-run --keep-last 10 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["kept"]), len(d["deleted"]))')

for name in "${names[@]}"; do printf '%s\t%s\n' "$name" "${runs[$name]# }"; done >"$work/times.tsv"
python3 - "$work/times.tsv" "$command_line" "$count" "$rounds" "$kept" <<'PY' | tee -a "$out"
import statistics, sys, datetime
times, command, count, rounds, kept = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = {}
for line in open(times):
    name, times = line.rstrip("\n").split("\t")
    runs[name] = [float(t) for t in times.split()]
med = {n: statistics.median(t) for n, t in runs.items()}
label = {
    "sqlite3": f"`sqlite3 -json catalog.db 'SELECT * FROM backups'` ({count:,} backups)",
    "list": f"`hookrun list --json` ({count:,} backups)",
    "show-big": f"`hookrun show ID --json`, newest of {count:,} backups",
    "show-small": "`hookrun show ID --json`, newest of 10 backups",
    "prune": f"`hookrun prune --dry-run --keep-last 10` ({count:,} backups)",
}
print()
print(f"## Catalog at scale ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, `{command}`)")
print()
print(f"A catalog of {count:,} backups generated from one real backup's rows (its run, hook results and trees; one")
print(f"in ten with a remote copy); output to /dev/null; median of {rounds} interleaved rounds.")
print()
print("| command | median (s) | runs (s) |")
print("| --- | ---: | --- |")
for name in ["sqlite3", "list", "show-big", "show-small", "prune"]:
    print(f"| {label[name]} | {med[name]:.3f} | {', '.join(f'{t:.3f}' for t in runs[name])} |")
print()
print(f"- `list --json` / `sqlite3 -json`: **{med['list'] / med['sqlite3']:.2f}×** (target ≤ 1.5×)")
print(f"- `show` on {count:,} backups / on 10: **{med['show-big'] / med['show-small']:.2f}×** (target ≤ 1.2×)")
print(f"- `prune --dry-run --keep-last 10` / `sqlite3 -json`: **{med['prune'] / med['sqlite3']:.2f}×** (target ≤ 1.5×; kept, deleted: {kept})")
PY
