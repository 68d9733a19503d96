#!/usr/bin/env bash
# portico's one entry point: installs what is missing from Debian's packages,
# builds BoringSSL from Debian's source package (cached outside the tree,
# keyed by version), builds portico with CMake, and runs tests or the demo.
#
#   ./build.sh            install missing packages and build into build/
#   ./build.sh test       build and run every test through ctest
#   ./build.sh demo       run portico locally in front of a sample backend
#   ./build.sh bench      run the benchmarks against nginx and HAProxy
#   ./build.sh clean      remove build directories
# Options (after the subcommand):
#   --asan                build with ASan+UBSan into build-asan/
#   --prebuilt-boringssl  link Debian's prebuilt android-libboringssl instead
#                         (slower P-256, see ../shared/DESIGN.md)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${PORTICO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portico}"
CMD="${1:-build}"
[ $# -gt 0 ] && shift
ASAN=0
PREBUILT=0
for arg in "$@"; do
  case "$arg" in
    --asan) ASAN=1 ;;
    --prebuilt-boringssl) PREBUILT=1 ;;
    *) echo "build.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

# Packages needed to build and test. The benchmark's extra peers are
# installed by bench/run.sh itself.
PACKAGES=(build-essential cmake ninja-build pkg-config dpkg-dev xz-utils
  libuv1-dev libnghttp2-dev libjansson-dev libyaml-dev libcmocka-dev
  node-llhttp python3 python3-pytest python3-h2 curl nghttp2-client openssl
  pebble procps)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

log() { printf '==> %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing from Debian: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Turns the system's `deb` entries into a private deb-src configuration, so
# `apt-get source` works without touching /etc/apt (DESIGN.md).
private_apt_config() {
  local dir="$1"
  mkdir -p "$dir/sources.list.d" "$dir/lists/partial"
  : > "$dir/sources.list.d/src.list"
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    python3 - "$dir/sources.list.d/src.sources" /etc/apt/sources.list.d/*.sources <<'PY'
import re, sys
out = []
for path in sys.argv[2:]:
    for stanza in open(path).read().split("\n\n"):
        if re.search(r"^Types:.*\bdeb\b", stanza, re.M):
            out.append(re.sub(r"^Types:.*$", "Types: deb-src", stanza, flags=re.M).strip())
open(sys.argv[1], "w").write("\n\n".join(out) + "\n")
PY
  fi
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >> "$dir/sources.list.d/src.list"
  done
}

# Prints the prefix of a BoringSSL build (include/, lib/, bin/bssl), building
# it first when the cache has none for the current package version.
boringssl_prefix() {
  local ver prefix work aptdir aptopts
  ver="$(apt-cache show --no-all-versions android-libboringssl 2>/dev/null | awk '/^Version:/{print $2; exit}')"
  if [ -z "$ver" ]; then
    as_root apt-get update -qq
    ver="$(apt-cache show --no-all-versions android-libboringssl | awk '/^Version:/{print $2; exit}')"
  fi
  prefix="$CACHE/boringssl-$ver"
  if [ -f "$prefix/.complete" ]; then
    echo "$prefix"; return 0
  fi
  log "building BoringSSL $ver from Debian's source package (about a minute)"
  work="$(mktemp -d)"
  aptdir="$work/apt"
  private_apt_config "$aptdir"
  aptopts=(-o "Dir::Etc::SourceList=$aptdir/sources.list.d/src.list"
           -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
           -o "Dir::State::Lists=$aptdir/lists")
  apt-get "${aptopts[@]}" update -qq >&2
  (cd "$work" && apt-get "${aptopts[@]}" source --download-only \
      "android-platform-external-boringssl=$ver" >&2)
  tar -C "$work" -xf "$work"/android-platform-external-boringssl_*.orig.tar.*
  local src
  src="$(find "$work" -maxdepth 1 -type d -name 'android-platform-external-boringssl-*' | head -n1)"
  cmake -S "$ROOT/tls/boringssl" -B "$work/build" -G Ninja \
    -DBORINGSSL_ROOT="$src" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix.tmp" >&2
  ninja -C "$work/build" install >&2
  touch "$prefix.tmp/.complete"
  rm -rf "$prefix"
  mv "$prefix.tmp" "$prefix"
  rm -rf "$work"
  echo "$prefix"
}

build() {
  install_packages "${PACKAGES[@]}"
  local dir=build opts=()
  if [ "$ASAN" -eq 1 ]; then dir=build-asan; opts+=(-DPORTICO_SANITIZE=ON); fi
  if [ "$PREBUILT" -eq 1 ]; then
    install_packages android-libboringssl-dev
    opts+=(-DPORTICO_PREBUILT_BORINGSSL=ON)
  else
    opts+=(-DBORINGSSL_PREFIX="$(boringssl_prefix)")
  fi
  [ "${CI:-}" = "true" ] && opts+=(-DPORTICO_WERROR=ON)
  cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${opts[@]}" >/dev/null
  ninja -C "$ROOT/$dir"
  BUILD_DIR="$ROOT/$dir"
}

case "$CMD" in
  build)
    build ;;
  test)
    build
    # Integration tests start real servers; two at a time suits a 2-core box.
    (cd "$BUILD_DIR" && ctest --output-on-failure -j "${PORTICO_TEST_JOBS:-2}")
    ;;
  demo)
    build
    exec /usr/bin/python3 "$ROOT/tests/demo.py" "$BUILD_DIR/portico"
    ;;
  bench)
    build
    exec "$ROOT/bench/run.sh" "$BUILD_DIR/portico"
    ;;
  clean)
    rm -rf "$ROOT/build" "$ROOT/build-asan" ;;
  *)
    echo "usage: ./build.sh [build|test|demo|bench|clean] [--asan] [--prebuilt-boringssl]" >&2
    exit 2 ;;
esac
