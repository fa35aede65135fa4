#!/usr/bin/env bash
# The original buildimage's command sequence (eng.git tools/buildimage), as
# plain commands: the baseline of the benchmark and the oracle of the
# equivalence test. Prints the stage boundaries as epoch seconds at the end.
# Usage: original-sequence.sh DATASET_ROOT ORIGIN_UUID NEW_UUID MOUNTPOINT PROTO OUT.zfs.gz PKG...
# BEFORE_COPY=PROGRAM: run with the image root after the clone, before the copy (the equivalence test lays
# out directory links of the image with it, as it does in buildimage's analog between prepare and assemble).
set -euo pipefail
ROOT=$1 ORIGIN=$2 UUID=$3 MNT=$4 PROTO=$5 OUT=$6; shift 6
t() { date +%s.%N; }
T0=$(t)
zfs clone -o mountpoint="$MNT" "$ROOT/$ORIGIN@final" "$ROOT/$UUID"
T1=$(t)
if [[ -n ${BEFORE_COPY:-} ]]; then "$BEFORE_COPY" "$MNT/root"; fi
rsync -a "$PROTO/" "$MNT/root/"
T2=$(t)
created=()
for d in /dev /lib /proc /sbin /usr /lib64; do
  [[ -e $d ]] || continue
  if [[ ! -d $MNT/root$d ]]; then mkdir "$MNT/root$d"; created+=("$MNT/root$d"); fi
  mount --bind "$d" "$MNT/root$d"; mount -o remount,bind,ro "$MNT/root$d"
done
env -i PATH=/opt/local/bin:/opt/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin /usr/sbin/chroot "$MNT/root" /opt/local/sbin/pkg_add -U "$@" >/dev/null
env -i PATH=/usr/bin:/bin /usr/sbin/chroot "$MNT/root" /opt/local/sbin/pkg_info -a >/dev/null
env -i PATH=/usr/bin:/bin /usr/sbin/chroot "$MNT/root" rm -rf /var/db/pkgin/
rm -rf "$MNT/config"
for d in /lib64 /usr /sbin /proc /lib /dev; do mountpoint -q "$MNT/root$d" && umount "$MNT/root$d"; done
for c in "${created[@]}"; do rmdir "$c"; done
T3=$(t)
zfs snapshot "$ROOT/$UUID@final"
zfs send -i "$ROOT/$ORIGIN@final" "$ROOT/$UUID@final" | gzip > "$OUT"
sha1sum "$OUT" >/dev/null
stat -c %s "$OUT" >/dev/null
for i in 1 2 3 4 5 6 7 8; do zfs destroy -r "$ROOT/$UUID" && break; sleep 1; done
T4=$(t)
echo "$T0 $T1 $T2 $T3 $T4"
