#!/usr/bin/env bash
# Installs everything flannel-ts needs on a Debian machine, as root, and builds
# it. Idempotent: a second run only checks. Used by the README's two commands
# and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(etcd-server etcd-client iperf3 iproute2 iptables openssl tcpdump
      containernetworking-plugins iputils-ping procps kmod python3-minimal
      chromium fonts-noto-cjk)
# chromium and fonts-noto-cjk: the web view's browser test (test/e2e/web.test.ts,
# headless, driven by puppeteer-core, which downloads no browser) and its Chinese page.
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
# Debian's etcd-server package may start a system etcd; flannel-ts never uses
# it (tests and demo run their own in namespaces), so leave it as it is.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
[ -f build/Release/flannel_tun.node ] || npm run install
npm run --silent build
