#!/usr/bin/env bash
# Installs and starts what buildimage and its tests need on a Debian host,
# as root: ZFS (the kernel's if present, else zfs-fuse), rsync, compressors,
# then the npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-host: run as root (ZFS, mounts and chroot need it)" >&2
  exit 2
fi

zfs_works() { zpool list >/dev/null 2>&1; }

# Command -> Debian package for everything the tool and tests run.
declare -A PKG=(
  [rsync]=rsync [pigz]=pigz [xz]=xz-utils [bzip2]=bzip2 [gzip]=gzip [tar]=tar
  [curl]=curl [chroot]=coreutils [mount]=mount [find]=findutils [mkfifo]=coreutils [mountpoint]=util-linux
  [git]=git
  # --run scripts: a PID and mount namespace, capabilities dropped (util-linux).
  [unshare]=util-linux [nsenter]=util-linux [setpriv]=util-linux
  # The eng Makefile drop-in test runs make.
  [make]=make
  # Tests parse the Jenkinsfiles with Groovy, as Jenkins does (pulls a JRE: ~4 s
  # with one present, 44 MB more without).
  [groovy]=groovy
)
missing=()
for cmd in "${!PKG[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}"); done
if ! command -v zfs >/dev/null 2>&1; then missing+=(zfs-fuse); fi
if ((${#missing[@]})); then
  echo "setup-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! zfs_works; then
  if command -v zfs-fuse >/dev/null 2>&1; then
    if ! pgrep -x zfs-fuse >/dev/null; then
      echo "setup-host: starting zfs-fuse"
      mkdir -p /var/run/zfs /var/lock/zfs
      zfs-fuse
    fi
    for _ in $(seq 1 50); do zfs_works && break; sleep 0.2; done
  fi
fi
if ! zfs_works; then
  echo "setup-host: no working ZFS (neither kernel ZFS nor zfs-fuse answered 'zpool list')" >&2
  exit 1
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
