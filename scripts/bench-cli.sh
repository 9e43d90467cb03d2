#!/usr/bin/env bash
# CLI latency benchmarks (issue 2: `--version` and `config list` < 20 ms; issue 3: `create` < 5 s with warm
# caches, `status` < 50 ms). Uses the ComfyUI stand-in and the local wheel index from the test suite, so it
# needs no internet. Requires hyperfine (`apt-get install hyperfine`) and uv on PATH.
#
#   scripts/bench-cli.sh            # builds the release binary, prints hyperfine tables
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p comfydock
BIN="$PWD/target/release/comfydock"
# The stand-ins (ComfyUI repo + wheel index) are started by a small test-support binary.
cargo build --release -q -p comfydock-test --bin comfydock-standins
STANDINS="$PWD/target/release/comfydock-standins"

WORK=$(mktemp -d)
trap 'kill $SPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$STANDINS" "$WORK/standins" > "$WORK/standins.env" &
SPID=$!
for _ in $(seq 100); do [ -s "$WORK/standins.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$WORK/standins.env"   # exports COMFYDOCK_COMFYUI_REPO, COMFYDOCK_TORCH_INDEX_URL, UV_INDEX_URL

export COMFYDOCK_HOME="$WORK/ws" UV_CACHE_DIR="$WORK/uv-cache" UV_PYTHON_DOWNLOADS=never NO_COLOR=1
"$BIN" init -q
"$BIN" create warm --comfyui v0.3.40 --torch-backend cpu -q   # warms the mirror and uv cache

hyperfine -N --warmup 5 --runs 50 "$BIN --version" "$BIN config list" "$BIN -e warm status"
hyperfine --warmup 1 --runs 5 \
  --prepare "$BIN delete bench --yes -q 2>/dev/null || true" \
  "$BIN create bench --comfyui v0.3.40 --torch-backend cpu -q"
