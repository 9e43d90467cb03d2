#!/usr/bin/env bash
# Scaling benchmarks (issue 22): each figure next to the reference tool doing the same work, on the
# same files, in the same run. Builds a 100,000-entry model index (small generated files), a 50 MB
# workflow, a folder of workflows, an environment with a 500 MB dev node and 50 modified tracked
# workflows; needs python3, sqlite3, uv, strace (bytes written) and b3sum (the scan reference;
# skipped when missing). The environment is made from the test suite's stand-ins (ComfyUI repo and
# wheel index); nothing touches the network.
#
#   scripts/bench-scale.sh                       # full size
#   BENCH_MODELS=20000 scripts/bench-scale.sh    # smaller index
#
# Figures: best of several runs (median in brackets), warm page cache, release build.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${BENCH_MODELS:-100000}
WORKFLOW_MB=${BENCH_WORKFLOW_MB:-50}
WORKFLOWS=${BENCH_WORKFLOWS:-644}
BUNDLE_ENTRIES=${BENCH_BUNDLE_ENTRIES:-19990}
BUNDLE_LARGE_MB=${BENCH_BUNDLE_LARGE_MB:-1024}
DEVNODE_MB=${BENCH_DEVNODE_MB:-500}
STATUS_WORKFLOWS=${BENCH_STATUS_WORKFLOWS:-50}
HELPER="python3 $PWD/scripts/bench_scale_data.py"

cargo build --release -q -p comfydock
cargo build --release -q -p comfydock-test --bin comfydock-standins
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/comfydock"
STANDINS="${CARGO_TARGET_DIR:-$PWD/target}/release/comfydock-standins"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-scale.XXXXXX")
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$WORK"' EXIT
export COMFYDOCK_HOME="$WORK/ws" NO_COLOR=1
DB="$COMFYDOCK_HOME/.metadata/model_index.db"

row() { printf '| %-44s | %-22s | %-30s | %-7s |\n' "$@"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}×')" "$1" "$2"; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:.1f} ms')" "$1"; }
best() { cut -d' ' -f1 <<<"$1"; }
median() { cut -d' ' -f2 <<<"$1"; }
peak_mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.0f} MiB')" "$(cut -d' ' -f3 <<<"$1")"; }

echo "Generating $MODELS model files, a ${WORKFLOW_MB} MB workflow and $WORKFLOWS workflows in $WORK ..." >&2
$HELPER models "$WORK/models" "$MODELS"
$HELPER workflow "$WORK/big.json" "$WORKFLOW_MB"
$HELPER workflows "$WORK/workflows" "$WORKFLOWS"
"$BIN" init -q
"$BIN" model root add "$WORK/models" -q

echo >&2 "First scans ..."
scan_best=""
for _ in 1 2 3; do
  rm -f "$DB" "$DB-wal" "$DB-shm"
  t=$($HELPER time 1 "$BIN" model scan -q)
  if [ -z "$scan_best" ] || python3 -c "import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))" "$(best "$t")" "$(best "$scan_best")"; then
    scan_best=$t
  fi
done
db_size=$(stat -c %s "$DB")
written=""
if command -v strace >/dev/null; then
  rm -f "$DB" "$DB-wal" "$DB-shm"
  strace -f -y -s 0 -qq -e trace=write,pwrite64,pwritev,pwritev2 -o "$WORK/scan.trace" "$BIN" model scan -q
  written=$($HELPER written "$WORK/scan.trace" model_index.db)
  db_size=$(stat -c %s "$DB")
fi
if command -v b3sum >/dev/null; then
  b3=$($HELPER time 3 sh -c "find '$WORK/models' -type f -print0 | xargs -0 b3sum")
fi

echo >&2 "Queries ..."
needle=model_004242_
find_one=$($HELPER time 20 "$BIN" model find "$needle")
find_none=$($HELPER time 20 "$BIN" model find no-such-model)
list=$($HELPER time 5 "$BIN" model list)
first=$($HELPER first-line "$BIN" model list)
JOIN="SELECT m.id, m.first_seen, m.blake3, m.size, h.hash_value, l.root, l.relative_path, l.folder, l.size,
  l.mtime_ns, l.inode, l.last_seen FROM models m
  LEFT JOIN model_hashes h ON h.model_id = m.id AND h.hash_type = 'sha256'
  LEFT JOIN locations l ON l.model_id = m.id"
sql_find=$($HELPER time 20 sqlite3 "$DB" "$JOIN WHERE m.id IN (SELECT model_id FROM locations WHERE relative_path LIKE '%$needle%') ORDER BY m.first_seen, m.id")
sql_list=$($HELPER time 5 sqlite3 "$DB" "$JOIN ORDER BY m.first_seen, m.id, l.root, l.relative_path")

echo >&2 "Workflows ..."
big_mb=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1]) / 2**20:.0f}')" "$WORK/big.json")
analyze_big=$($HELPER time 3 "$BIN" workflow analyze "$WORK/big.json")
json_load=$($HELPER time 3 python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/big.json")
many=$($HELPER time 5 "$BIN" workflow analyze "$WORK/workflows")
cat_floor=$($HELPER time 5 sh -c "for f in '$WORK'/workflows/*.json; do cat \"\$f\"; done")

echo >&2 "Bundles ..."
# Import runs every check, unpacks, verifies and writes the environment's files, then stops at the
# ComfyUI checkout (its pinned commit does not exist; no network is touched).
$HELPER bundle "$WORK/many.tar.gz" "$BUNDLE_ENTRIES" 0
$HELPER bundle "$WORK/large.tar.gz" 0 "$BUNDLE_LARGE_MB"
# Peak memory of comfydock's own process: on a machine without uv, import first installs it with
# pip, whose memory is not comfydock's.
import_many=$(COMFYDOCK_COMFYUI_REPO=/nonexistent/comfyui $HELPER time-self-to-error 3 "$BIN" --yes import "$WORK/many.tar.gz")
import_large=$(COMFYDOCK_COMFYUI_REPO=/nonexistent/comfyui $HELPER time-self-to-error 3 "$BIN" --yes import "$WORK/large.tar.gz")
tar_many=$($HELPER time 3 sh -c "rm -rf '$WORK/untar' && mkdir '$WORK/untar' && tar -xzf '$WORK/many.tar.gz' -C '$WORK/untar'")

echo >&2 "Environment: export of a ${DEVNODE_MB} MB dev node, status with $STATUS_WORKFLOWS modified workflows ..."
"$STANDINS" "$WORK/standins" > "$WORK/standins.env" &
SPID=$!
for _ in $(seq 100); do [ -s "$WORK/standins.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$WORK/standins.env"   # COMFYDOCK_COMFYUI_REPO, COMFYDOCK_TORCH_INDEX_URL, UV_INDEX_URL, ...
export UV_CACHE_DIR="$WORK/uv-cache" UV_PYTHON_DOWNLOADS=never
"$BIN" create bench --comfyui v0.3.40 --torch-backend cpu -q
ENV_DIR="$COMFYDOCK_HOME/environments/bench"
status_none=$($HELPER time 30 "$BIN" -e bench status)
# Tracked workflows, then every one changed in ComfyUI (a widget value) without a commit.
LIVE="$ENV_DIR/ComfyUI/user/default/workflows"
$HELPER workflows "$LIVE" "$STATUS_WORKFLOWS"
"$BIN" -e bench workflow track --all -q
"$BIN" -e bench commit -m "Workflows" -q
sed -i 's/"randomize"/"fixed"/' "$LIVE"/*.json
status_modified=$($HELPER time 30 "$BIN" -e bench status)
# The first run after the edits: each run follows new edits of all of them (commit recorded the
# hashes of the committed copies, so only the edited files are parsed).
status_first=$($HELPER time-prepared 30 "$HELPER edit '$LIVE'" "$BIN" -e bench status)
# No cache at all (a fresh clone or import): both sides are parsed (the shell start is included).
status_cold=$($HELPER time 30 sh -c "rm -f '$ENV_DIR/.workflow-hashes.json' && exec '$BIN' -e bench status")
"$BIN" -e bench --json status | python3 -c "import json,sys; d=json.load(sys.stdin); n=sum(w['state']=='modified' for w in d['workflows']); assert n == $STATUS_WORKFLOWS, n"
"$BIN" -e bench commit -m "Workflows changed" -q
$HELPER devnode "$WORK/dev/BigNode" "$DEVNODE_MB"
"$BIN" -e bench node add --dev "$WORK/dev/BigNode" -q
"$BIN" -e bench commit -m "A large dev node" -q
dev_mb=$(du -sm "$WORK/dev/BigNode" | cut -f1)
export_big=$($HELPER time-self 3 "$BIN" -e bench -q export --allow-large-dev-nodes --allow-issues -o "$WORK/export.tar.gz")
tar_big=$($HELPER time 3 tar -czf "$WORK/tar.tar.gz" -C "$WORK/dev" BigNode -C "$ENV_DIR/.cec" pyproject.toml uv.lock workflows)
# Into a fresh workspace (no ComfyUI mirror yet), so import stops at the checkout as above.
COMFYDOCK_HOME="$WORK/ws-import" "$BIN" init -q
import_big=$(COMFYDOCK_HOME="$WORK/ws-import" COMFYDOCK_COMFYUI_REPO=/nonexistent/comfyui $HELPER time-self-to-error 1 "$BIN" --yes import "$WORK/export.tar.gz")

echo
row "what ($MODELS models)" "comfydock" "reference" "ratio"
row "---" "---" "---" "---"
row "first \`model scan\`" "$(best "$scan_best") s" "$( [ -n "${b3:-}" ] && echo "b3sum: $(best "$b3") s" || echo "b3sum not installed")" "$( [ -n "${b3:-}" ] && ratio "$(best "$scan_best")" "$(best "$b3")" || echo -)"
if [ -n "$written" ]; then
  row "bytes written to the index by that scan" "$(python3 -c "print(f'{$written / 2**20:.1f} MiB')")" "final index: $(python3 -c "print(f'{$db_size / 2**20:.1f} MiB')")" "$(ratio "$written" "$db_size")"
fi
row "\`model find\` (1 match)" "$(ms "$(best "$find_one")") ($(ms "$(median "$find_one")"))" "sqlite3 CLI: $(ms "$(best "$sql_find")")" "$(ratio "$(best "$find_one")" "$(best "$sql_find")")"
row "\`model find\` (no match)" "$(ms "$(best "$find_none")") ($(ms "$(median "$find_none")"))" "" ""
row "\`model list\`" "$(ms "$(best "$list")") ($(ms "$(median "$list")"))" "sqlite3 CLI, same join: $(ms "$(best "$sql_list")")" "$(ratio "$(best "$list")" "$(best "$sql_list")")"
row "\`model list\` first line" "$(ms "$(cut -d' ' -f1 <<<"$first")")" "" ""
row "\`workflow analyze\` ${big_mb} MiB: time" "$(best "$analyze_big") s" "python3 json.load: $(best "$json_load") s" "$(ratio "$(best "$analyze_big")" "$(best "$json_load")")"
row "\`workflow analyze\` ${big_mb} MiB: peak memory" "$(peak_mib "$analyze_big")" "python3 json.load: $(peak_mib "$json_load")" "$(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024 / float(sys.argv[2]):.1f}× file')" "$(cut -d' ' -f3 <<<"$analyze_big")" "$big_mb")"
row "\`import\` $BUNDLE_ENTRIES-entry bundle (to checkout)" "$(best "$import_many") s, $(peak_mib "$import_many") (own process)" "tar -xzf: $(best "$tar_many") s" "$(ratio "$(best "$import_many")" "$(best "$tar_many")")"
row "\`import\` ${BUNDLE_LARGE_MB} MiB entry: peak memory" "$(peak_mib "$import_large") (own process, $(best "$import_large") s)" "" ""
row "\`export\` ${dev_mb} MiB dev node" "$(best "$export_big") s, $(peak_mib "$export_big") (own process)" "tar -czf: $(best "$tar_big") s, $(peak_mib "$tar_big")" "$(ratio "$(best "$export_big")" "$(best "$tar_big")")"
row "\`import\` of that bundle (to checkout)" "$(best "$import_big") s, $(peak_mib "$import_big") (own process)" "" ""
row "\`status\`, $STATUS_WORKFLOWS tracked workflows modified" "$(ms "$(best "$status_modified")") ($(ms "$(median "$status_modified")"))" "no workflows: $(ms "$(best "$status_none")")" "$(ratio "$(best "$status_modified")" "$(best "$status_none")")"
row "\`status\`, first run after new edits" "$(ms "$(best "$status_first")") ($(ms "$(median "$status_first")"))" "no workflows: $(ms "$(best "$status_none")")" "$(ratio "$(best "$status_first")" "$(best "$status_none")")"
row "\`status\`, no hash cache at all" "$(ms "$(best "$status_cold")") ($(ms "$(median "$status_cold")"))" "no workflows: $(ms "$(best "$status_none")")" "$(ratio "$(best "$status_cold")" "$(best "$status_none")")"
row "\`workflow analyze DIR\` ($WORKFLOWS files)" "$(best "$many") s" "cat loop: $(best "$cat_floor") s" "$(ratio "$(best "$many")" "$(best "$cat_floor")")"
