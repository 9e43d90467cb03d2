#!/usr/bin/env bash
# Benchmark (issue 4): `node add` of a cached registry node with a warm uv cache must take < 2 s.
# Uses the stand-ins from the test suite (ComfyUI repo, wheel index, Registry), so no internet is needed.
# Requires hyperfine and uv on PATH.
#
#   crates/comfydock/benches/node_add.sh          # release build; prints a hyperfine table
#
# Each run removes the node first (--prepare), then times `node add bench-node@1.0.0`: the archive is
# in the workspace cache and its wheels in the uv cache, so the time is registry lookup + hash check +
# re-lock + hardlink install + uv sync.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --release -q -p comfydock
cargo build --release -q -p comfydock-test --bin comfydock-standins
BIN="$PWD/target/release/comfydock"
STANDINS="$PWD/target/release/comfydock-standins"

WORK=$(mktemp -d)
trap 'kill $SPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$STANDINS" "$WORK/standins" > "$WORK/standins.env" &
SPID=$!
for _ in $(seq 100); do grep -q REGISTRY "$WORK/standins.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$WORK/standins.env"

export COMFYDOCK_HOME="$WORK/ws" UV_CACHE_DIR="$WORK/uv-cache" UV_PYTHON_DOWNLOADS=never NO_COLOR=1
"$BIN" init -q
"$BIN" create bench --comfyui v0.3.40 --torch-backend cpu -q
# Warm both caches once.
"$BIN" -e bench node add bench-node@1.0.0 -q
"$BIN" -e bench node remove bench-node -q

hyperfine --warmup 1 --runs 10 \
  --prepare "$BIN -e bench node remove bench-node -q 2>/dev/null || true" \
  "$BIN -e bench node add bench-node@1.0.0 -q"
