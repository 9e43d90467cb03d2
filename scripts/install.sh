#!/bin/sh
# Install comfydock from a release, without Python or Rust: download the archive for this
# machine, check it against its published sha256, put the binary in COMFYDOCK_INSTALL_DIR
# (default ~/.local/bin) and leave a receipt next to it so `comfydock self update` can update
# it in place.
#
#   curl -LsSf https://github.com/comfydock/comfydock/releases/latest/download/install.sh | sh
#
# COMFYDOCK_RELEASE_URL points at another release location (a mirror, a fork).
set -eu

RELEASE_URL="${COMFYDOCK_RELEASE_URL:-https://github.com/comfydock/comfydock/releases}"
RELEASE_URL="${RELEASE_URL%/}"
INSTALL_DIR="${COMFYDOCK_INSTALL_DIR:-${HOME}/.local/bin}"

say() { printf 'comfydock-installer: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

download() {
  if command -v curl >/dev/null 2>&1; then
    curl --proto '=https,http' -fsSL "$1" -o "$2" || fail "could not download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q "$1" -O "$2" || fail "could not download $1"
  else
    fail "curl or wget is needed to download comfydock"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  else
    fail "sha256sum or shasum is needed to verify the download"
  fi
}

case "$RELEASE_URL" in
  *[\"\\\ ]*) fail "COMFYDOCK_RELEASE_URL must be a plain URL" ;;
esac

os=$(uname -s)
arch=$(uname -m)
libc=gnu
if [ "$os" = Linux ] && { ldd --version 2>&1 || true; } | grep -qi musl; then
  libc=musl
fi
case "$os-$arch" in
  Linux-x86_64 | Linux-amd64) target="x86_64-unknown-linux-$libc" ;;
  Linux-aarch64 | Linux-arm64) target="aarch64-unknown-linux-$libc" ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64 | Darwin-aarch64) target=aarch64-apple-darwin ;;
  *) fail "no comfydock release for $os $arch; install it with \`uv tool install comfydock-rs\` or build it from source" ;;
esac

archive="comfydock-$target.tar.gz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
say "downloading $archive"
download "$RELEASE_URL/latest/download/$archive" "$tmp/$archive"
download "$RELEASE_URL/latest/download/$archive.sha256" "$tmp/$archive.sha256"
expected=$(cut -d ' ' -f 1 <"$tmp/$archive.sha256")
actual=$(sha256_of "$tmp/$archive")
[ -n "$expected" ] && [ "$expected" = "$actual" ] ||
  fail "$archive does not match its published sha256 (expected $expected, got $actual); nothing was installed"

mkdir "$tmp/unpacked"
tar -xzf "$tmp/$archive" -C "$tmp/unpacked"
binary=""
for candidate in "$tmp/unpacked/comfydock" "$tmp"/unpacked/*/comfydock; do
  if [ -f "$candidate" ]; then binary="$candidate"; break; fi
done
[ -n "$binary" ] || fail "$archive holds no comfydock binary"

mkdir -p "$INSTALL_DIR"
cp "$binary" "$INSTALL_DIR/.comfydock.new"
chmod 755 "$INSTALL_DIR/.comfydock.new"
mv -f "$INSTALL_DIR/.comfydock.new" "$INSTALL_DIR/comfydock"
printf '{"release_url": "%s", "target": "%s"}\n' "$RELEASE_URL" "$target" >"$INSTALL_DIR/comfydock-receipt.json"
say "installed $("$INSTALL_DIR/comfydock" --version) to $INSTALL_DIR/comfydock"
case ":${PATH}:" in
  *":$INSTALL_DIR:"*) ;;
  *) say "add $INSTALL_DIR to your PATH to run \`comfydock\`" ;;
esac
