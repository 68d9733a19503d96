#!/usr/bin/env bash
# Benchmarks portico side by side with nginx and HAProxy (bench/README.md).
#   ./build.sh bench            or   bench/run.sh build/portico [--rounds N] [--quick]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORTICO="${1:-$HERE/../build/portico}"
[ $# -gt 0 ] && shift
missing=()
for p in nginx-light haproxy wrk nghttp2-client openssl python3 python3-cryptography pebble caddy redis-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing from Debian: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the packaged daemons; the benchmark runs its own instances.
# 10,000 idle connections (scenario 6) need more descriptors than many
# defaults allow; root may raise the hard limit too.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec /usr/bin/python3 "$HERE/bench.py" --portico "$PORTICO" "$@"
