# shellcheck shell=bash
# Shared set-up for scripts/demo and scripts/test (sourced, not run): Debian packages,
# the controller venv from pinned requirements, and a clean copy of the collection.
# Needs only bash on a fresh Debian 12 machine, as root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NSBOX_VENV:-$REPO/.venv}
# Outside the checkout: ansible-test would list files through the checkout's git and skip ignored ones.
BUILD=${NSBOX_BUILD:-/var/tmp/nsbox-build}
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

# What the managed host (this machine) and the test harness need.
APT_PACKAGES=(
  python3 python3-venv openssh-server openssh-client
  python3-pyroute2 python3-nftables python3-seccomp
  busybox-static docker-registry skopeo umoci podman apache2-utils openssl util-linux
  python3-zstandard zstd catatonit
  shellcheck
  gcc libc6-dev
  qemu-system-x86 qemu-utils debootstrap e2fsprogs
)

log() { printf '>>> %s\n' "$*" >&2; }

ensure_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "run this as root: nsbox manages namespaces, cgroups and mounts" >&2
    exit 2
  fi
}

ensure_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local req=$REPO/requirements-test.txt stamp
  stamp=$(cat "$REPO/requirements.txt" "$req" | sha256sum | cut -c1-16)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.nsbox-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "creating the venv $VENV from pinned requirements"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$req"
    echo "$stamp" > "$VENV/.nsbox-stamp"
  fi
  export PATH=$VENV/bin:$PATH
}

# ansible-test needs the collection at .../ansible_collections/nsbox/runtime and looks at
# every file there: copy exactly what git would ship (tracked + new, not ignored).
build_collection() {
  local dest=$BUILD/ansible_collections/nsbox/runtime
  rm -rf "$BUILD"
  mkdir -p "$dest"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
     [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -a -t "$dest")
  export NSBOX_COLLECTION=$dest
  export NSBOX_COLLECTIONS_PATH=$BUILD
}
