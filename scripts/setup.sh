#!/usr/bin/env bash
# Installs everything flannel-ts needs on a Debian machine, as root, and builds
# it. Idempotent: a second run only checks. Used by the README's two commands
# and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The packages come from scripts/requirements.txt, the one list of commands the
# tests, the demo and the bench run (the tests check the same list up front).
mapfile -t PKGS < <(grep -v '^[[:space:]]*#' scripts/requirements.txt | awk 'NF >= 2 { print $2 }' | sort -u)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Every listed command must now run (a package that no longer ships it, or a
# PATH without /usr/sbin, shows here rather than in the middle of a test).
absent=()
while read -r cmd pkg _; do
  case "$cmd" in ''|'#'*) continue ;; esac
  if [[ "$cmd" == /* ]]; then [ -f "$cmd" ] || absent+=("$cmd ($pkg)")
  else command -v "$cmd" >/dev/null || absent+=("$cmd ($pkg)"); fi
done < scripts/requirements.txt
if [ ${#absent[@]} -gt 0 ]; then
  echo "setup: FLANNEL_ERR_MISSING_COMMAND: still missing after install: ${absent[*]}" >&2
  exit 1
fi
# Debian's etcd-server package may start a system etcd; flannel-ts never uses
# it (tests and demo run their own in namespaces), so leave it as it is.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# Both modules of binding.gyp: the product's addon and its test build.
# Rebuilt too when a C source or binding.gyp is newer than the build (a pull
# that changed the addon without changing package-lock.json).
if ! { [ -f build/Release/flannel_tun.node ] && [ -f build/Release/flannel_tun_test.node ]; } ||
   [ -n "$(find src/tun/native binding.gyp -newer build/Release/flannel_tun.node -print -quit)" ]; then
  npm run install
fi
npm run --silent build
