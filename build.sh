#!/usr/bin/env bash
# portico's one entry point: installs what is missing from Debian's packages,
# builds BoringSSL from Debian's source package (cached outside the tree,
# keyed by version), builds portico with CMake, and runs tests or the demo.
#
#   ./build.sh            install missing packages and build into build/
#   ./build.sh test       build and run every test through ctest
#   ./build.sh demo       run portico locally in front of a sample backend (in a
#                         terminal it runs until Ctrl-C; without one it stops
#                         after its first request, or with --keep runs until a signal)
#   ./build.sh bench      run the benchmarks against nginx and HAProxy
#   ./build.sh clean      remove build directories
#   ./build.sh man        regenerate docs/portico.8 from docs/portico.8.md (pandoc;
#                         the generated page is committed, so builds need no pandoc)
#   ./build.sh format-check   fail when a source differs from .clang-format (CI)
#   ./build.sh format     reformat the sources with clang-format
#   ./build.sh fuzz NAME [SECONDS]   build the libFuzzer drivers (clang, ASan,
#                         UBSan) into build-fuzz/ and run tests/fuzz/fuzz_NAME
#                         (until stopped, or for SECONDS)
#   ./build.sh fuzz --all SECONDS    run every driver for SECONDS each
# Options (after the subcommand):
#   --asan                build with ASan+UBSan into build-asan/
#   --tsan                build with ThreadSanitizer into build-tsan/; with
#                         `test`, run only the tests with several workers and
#                         on-demand issuance (TSAN_TESTS below)
#   --prebuilt-boringssl  link Debian's prebuilt android-libboringssl instead
#                         (slower P-256, see docs/dependencies.md)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${PORTICO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portico}"
CMD="${1:-build}"
[ $# -gt 0 ] && shift
ASAN=0
TSAN=0
PREBUILT=0
FUZZ_ARGS=()
DEMO_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --keep|--once) [ "$CMD" = demo ] && { DEMO_ARGS+=("$arg"); continue; }
      echo "build.sh: $arg is an option of ./build.sh demo" >&2; exit 2 ;;
    --asan) ASAN=1 ;;
    --tsan) TSAN=1 ;;
    --prebuilt-boringssl) PREBUILT=1 ;;
    *)
      if [ "$CMD" = fuzz ]; then FUZZ_ARGS+=("$arg"); continue; fi
      echo "build.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
if [ "$ASAN" -eq 1 ] && [ "$TSAN" -eq 1 ]; then
  echo "build.sh: --asan and --tsan do not combine" >&2; exit 2
fi

# Packages needed to build and test. The benchmark's extra peers are
# installed by bench/run.sh itself.
PACKAGES=(build-essential cmake ninja-build pkg-config dpkg-dev xz-utils
  libuv1-dev libnghttp2-dev libjansson-dev libyaml-dev libcmocka-dev
  node-llhttp python3 python3-pytest python3-h2 curl nghttp2-client openssl
  pebble procps libhiredis-dev redis-server python3-prometheus-client faketime
  bind9 bind9-dnsutils
  systemd)  # systemd: systemd-analyze rates dist/portico.service (test_deploy)
# The fuzz drivers need clang and its libFuzzer/sanitizer runtimes.
FUZZ_PACKAGES=(clang libclang-rt-dev)

# The integration tests the ThreadSanitizer build runs: those that start
# portico with several workers (the harness default is 2), where the
# certificate manager's thread meets the workers (test_sni's on-demand
# lookups, test_acme's restarts, test_ctl_events' issuance).
TSAN_TESTS='integration\.test_(acme|bulk|ctl_events|limits_timeouts|metrics|redirect_hsts|reload|routing|shutdown|smuggling|sni|upstream_errors|websocket)$'

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
# `apt-get source` works without touching /etc/apt (docs/dependencies.md).
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
# it first when the cache has none for the current package version. With
# "tsan", a build instrumented for ThreadSanitizer: BoringSSL's reference
# counts are atomics, and TSan must see them, or the thread that drops the
# last reference to a certificate (and frees it) looks as if it raced with
# the thread whose handshake used it before.
boringssl_prefix() {
  local flavor="${1:-}" ver prefix work aptdir aptopts flags=()
  ver="$(apt-cache show --no-all-versions android-libboringssl 2>/dev/null | awk '/^Version:/{print $2; exit}')"
  if [ -z "$ver" ]; then
    as_root apt-get update -qq
    ver="$(apt-cache show --no-all-versions android-libboringssl | awk '/^Version:/{print $2; exit}')"
  fi
  prefix="$CACHE/boringssl-$ver${flavor:+-$flavor}"
  if [ "$flavor" = tsan ]; then
    flags=(-DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread
           -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread)
  fi
  if [ -f "$prefix/.complete" ]; then
    echo "$prefix"; return 0
  fi
  log "building BoringSSL $ver${flavor:+ ($flavor)} from Debian's source package (about a minute)"
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
    -DCMAKE_INSTALL_PREFIX="$prefix.tmp" "${flags[@]}" >&2
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
  if [ "$TSAN" -eq 1 ]; then dir=build-tsan; opts+=(-DPORTICO_TSAN=ON); fi
  if [ "$PREBUILT" -eq 1 ]; then
    install_packages android-libboringssl-dev
    opts+=(-DPORTICO_PREBUILT_BORINGSSL=ON)
  elif [ "$TSAN" -eq 1 ]; then
    opts+=(-DBORINGSSL_PREFIX="$(boringssl_prefix tsan)")
  else
    opts+=(-DBORINGSSL_PREFIX="$(boringssl_prefix)")
  fi
  [ "${CI:-}" = "true" ] && opts+=(-DPORTICO_WERROR=ON)
  cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${opts[@]}" >/dev/null
  ninja -C "$ROOT/$dir"
  BUILD_DIR="$ROOT/$dir"
}

# Builds the fuzz drivers (tests/fuzz/README.md) into build-fuzz/.
build_fuzz() {
  install_packages "${PACKAGES[@]}" "${FUZZ_PACKAGES[@]}"
  local opts=()
  if [ "$PREBUILT" -eq 1 ]; then
    install_packages android-libboringssl-dev
    opts+=(-DPORTICO_PREBUILT_BORINGSSL=ON)
  else
    opts+=(-DBORINGSSL_PREFIX="$(boringssl_prefix)")
  fi
  [ "${CI:-}" = "true" ] && opts+=(-DPORTICO_WERROR=ON)
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$ROOT/build-fuzz" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTICO_FUZZ=ON "${opts[@]}" >/dev/null
  ninja -C "$ROOT/build-fuzz"
}

# Runs driver $1 for $2 seconds (0: until stopped) on its seed corpus; new
# inputs go to build-fuzz/corpus/$1, a crash to build-fuzz/crashes/.
run_fuzzer() {
  local name="$1" secs="$2" bin="$ROOT/build-fuzz/fuzz_$1"
  [ -x "$bin" ] || { echo "build.sh: no fuzz driver '$name' (tests/fuzz/fuzz_$name.c)" >&2; return 2; }
  mkdir -p "$ROOT/build-fuzz/corpus/$name" "$ROOT/build-fuzz/crashes"
  local args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              "-artifact_prefix=$ROOT/build-fuzz/crashes/$name-")
  [ "$secs" -gt 0 ] && args+=("-max_total_time=$secs")
  [ -f "$ROOT/tests/fuzz/$name.dict" ] && args+=("-dict=$ROOT/tests/fuzz/$name.dict")
  "$bin" "${args[@]}" "$ROOT/build-fuzz/corpus/$name" "$ROOT/tests/fuzz/corpus/$name"
}

fuzz() {
  if [ ${#FUZZ_ARGS[@]} -eq 0 ]; then
    echo "usage: ./build.sh fuzz NAME [SECONDS] | ./build.sh fuzz --all SECONDS" >&2; exit 2
  fi
  build_fuzz
  if [ "${FUZZ_ARGS[0]}" != "--all" ]; then
    run_fuzzer "${FUZZ_ARGS[0]}" "${FUZZ_ARGS[1]:-0}"
    return
  fi
  local secs="${FUZZ_ARGS[1]:-20}" failed=() src name
  for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
    name="$(basename "$src" .c)"; name="${name#fuzz_}"
    log "fuzzing $name for ${secs}s"
    if run_fuzzer "$name" "$secs" >"$ROOT/build-fuzz/$name.log" 2>&1; then
      grep -E '^(stat::number_of_executed_units|Done)' "$ROOT/build-fuzz/$name.log" >&2 || true
    else
      failed+=("$name")
      tail -n 80 "$ROOT/build-fuzz/$name.log" >&2
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    log "fuzzers that failed: ${failed[*]} (logs in build-fuzz/, inputs in build-fuzz/crashes/)"
    return 1
  fi
}

case "$CMD" in
  build)
    build ;;
  test)
    build
    # Integration tests start real servers; two at a time suits a 2-core box.
    filter=()
    [ "$TSAN" -eq 1 ] && filter=(-R "$TSAN_TESTS")
    (cd "$BUILD_DIR" && ctest --output-on-failure -j "${PORTICO_TEST_JOBS:-2}" "${filter[@]}")
    ;;
  fuzz)
    fuzz ;;
  demo)
    build
    exec /usr/bin/python3 "$ROOT/tests/demo.py" "$BUILD_DIR/portico" ${DEMO_ARGS[@]+"${DEMO_ARGS[@]}"}
    ;;
  bench)
    build
    exec "$ROOT/bench/run.sh" "$BUILD_DIR/portico"
    ;;
  format-check)
    # The sources as .clang-format lays them out; CI fails on any difference.
    install_packages clang-format
    cd "$ROOT"
    git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
    ;;
  format)
    install_packages clang-format
    cd "$ROOT"
    git ls-files '*.c' '*.h' | xargs clang-format -i
    ;;
  man)
    install_packages pandoc
    pandoc --standalone --from markdown --to man "$ROOT/docs/portico.8.md" -o "$ROOT/docs/portico.8"
    log "wrote docs/portico.8"
    ;;
  clean)
    rm -rf "$ROOT/build" "$ROOT/build-asan" "$ROOT/build-tsan" "$ROOT/build-fuzz" ;;
  *)
    echo "usage: ./build.sh [build|test|demo|bench|clean|man|fuzz|format|format-check] [--asan|--tsan] [--prebuilt-boringssl]" >&2
    exit 2 ;;
esac
