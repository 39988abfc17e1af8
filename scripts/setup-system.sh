#!/usr/bin/env bash
# Idempotent system set-up for a fresh Debian 12 machine: makes a WebGPU adapter available to Dawn
# (Mesa >= 25 lavapipe from the distribution's backports suite, plus the Vulkan loader) and, with
# --browser, installs Debian's Chromium for the browser tests. Names no package host: the backports
# source is derived from the machine's own apt configuration. Does nothing when all is present.
set -euo pipefail
want_browser=0
for a in "$@"; do [ "$a" = "--browser" ] && want_browser=1; done

have_lavapipe() {
  # Mesa 25's lavapipe ICD plus the loader; Debian 12's own Mesa 22 is rejected by Dawn.
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25 && dpkg-query -W libvulkan1 >/dev/null 2>&1
}
have_chromium() { command -v chromium >/dev/null 2>&1; }

need=0
have_lavapipe || need=1
[ $want_browser = 1 ] && ! have_chromium && need=1
[ $need = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  SUDO=sudo; command -v sudo >/dev/null || { echo "setup-system: need root to install Vulkan/Mesa packages" >&2; exit 1; }
else SUDO=; fi

# A fresh machine may be running apt at boot (unattended upgrades, cloud-init): wait for the package
# manager's locks instead of failing. Install waits on dpkg's lock through DPkg::Lock::Timeout; update
# (the lists lock) is retried while apt reports a held lock, for up to ~10 minutes.
APT_WAIT=(-o DPkg::Lock::Timeout=600)
apt_locked() { grep -qiE 'could not get lock|unable to acquire the dpkg frontend lock|is held by process' "$1"; }
apt_run() {
  local log; log=$(mktemp)
  for _ in $(seq 1 60); do
    if "$@" 2>"$log"; then rm -f "$log"; return 0; fi
    if apt_locked "$log"; then echo "setup-system: the package manager is busy (another apt/dpkg holds its lock); waiting..." >&2; sleep 10; continue; fi
    cat "$log" >&2; rm -f "$log"; return 1
  done
  cat "$log" >&2; rm -f "$log"; echo "setup-system: apt's lock stayed held for 10 minutes; giving up" >&2; return 1
}

. /etc/os-release
if ! have_lavapipe; then
  if [ "${ID:-}" != debian ]; then
    echo "setup-system: not Debian ($ID); install Mesa >= 25 lavapipe (mesa-vulkan-drivers) and libvulkan1 yourself" >&2
    exit 1
  fi
  list=/etc/apt/sources.list.d/backports.list
  if ! grep -rqs -- "${VERSION_CODENAME}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Reuse the URI of the machine's own Debian source (deb lines or deb822 URIs:).
    src=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true) \
      | grep -oE '^(URIs:|deb) *[^ ]+' | awk '{print $2}' | grep -E '/debian/?$' | head -1)
    [ -n "$src" ] || { echo "setup-system: no Debian source found in apt configuration" >&2; exit 1; }
    echo "deb $src ${VERSION_CODENAME}-backports main" | $SUDO tee "$list" >/dev/null
  fi
  apt_run $SUDO apt-get "${APT_WAIT[@]}" update -qq
  apt_run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${APT_WAIT[@]}" install -y -qq -t "${VERSION_CODENAME}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
fi
if [ $want_browser = 1 ] && ! have_chromium; then
  apt_run $SUDO apt-get "${APT_WAIT[@]}" update -qq
  apt_run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${APT_WAIT[@]}" install -y -qq chromium >/dev/null
fi
echo "setup-system: done"
