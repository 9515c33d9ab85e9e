#!/bin/sh
# Scripted stand-in for the kernel-facing commands of a DRBD hive, for
# servers that are containers (no DRBD module, no block devices to spare).
# Installed on a server as links in /usr/local/sbin (ahead of /usr/sbin on
# root's, sudo's and systemd's PATH) named drbdadm, drbdsetup, modprobe,
# lsmod, modinfo, lsblk, blkid, pvcreate, vgcreate, vgs, lvs, lvcreate, lvremove,
# mkfs and docker.
#
# What it keeps real: drbdadm's parsing of the resource files (sh-*, dump,
# and a syntax check on every adjust are passed to /usr/sbin/drbdadm from
# drbd-utils), systemd running drbd-resource@.service (its ExecStop, the
# real drbdadm, fails here for want of /proc/drbd; build-volumes' destroy
# plan takes the resource down itself), the network between the hives and their firewall: a resource that is up serves its state
# ("ROLE DISK") over HTTP on its own DRBD address and port, and a peer is
# Connected exactly when that address answers, so a blocked port 7000-7999
# leaves the peer Connecting as it would with DRBD. Syncs finish at once.
# `drbdsetup events2` prints lines shaped as drbd-utils 9 prints them.
#
# State lives in /var/lib/hive-drbd-standin; every call is logged there.
set -u
S=/var/lib/hive-drbd-standin
BB="$S/busybox"
REAL_DRBDADM=/usr/sbin/drbdadm
tool="$(basename "$0")"
mkdir -p "$S/res" "$S/www" "$S/vg" "$S/pv" "$S/fs" "$S/dvol"
echo "$tool $*" >>"$S/log"

resfile() { echo "/etc/drbd.d/$1.res"; }
hosts_of() { sed -n 's/^  on \([^ ]*\) {$/\1/p' "$(resfile "$1")"; }
# field RES HOST KEY: the first word after KEY in HOST's `on` section.
field() {
  awk -v h="$2" -v k="$3" '$1 == "on" { cur = $2 } cur == h && $1 == k { v = $2; if (v == "minor") v = $3; sub(/;$/, "", v); print v; exit }' "$(resfile "$1")"
}
me_of() {
  n="$(uname -n)"
  for h in $(hosts_of "$1"); do
    if [ "$h" = "$n" ] || [ "${h%%.*}" = "$n" ]; then echo "$h"; return 0; fi
  done
  echo "'$1': no host section for $n" >&2
  return 1
}
d() { mkdir -p "$S/res/$1"; echo "$S/res/$1"; }
is_up() { [ -e "$S/res/$1/up" ]; }
stored() { cat "$S/res/$1/$2" 2>/dev/null || echo "$3"; }
publish() { mkdir -p "$S/www/$1"; echo "$(stored "$1" role Secondary) $(stored "$1" disk DUnknown)" >"$S/www/$1/state"; }
# peer_state RES PEER: "ROLE DISK" of the peer, or nothing when it cannot be reached.
peer_state() {
  curl -fsS --connect-timeout 1 --max-time 2 "http://$(field "$1" "$2" address)/state" 2>/dev/null
}
# The local disk after an instant resync from any reachable UpToDate peer.
eff_disk() {
  dk="$(stored "$1" disk DUnknown)"
  if [ "$dk" = Inconsistent ] || [ "$dk" = Outdated ]; then
    me="$(me_of "$1")"
    for p in $(hosts_of "$1"); do
      [ "$p" = "$me" ] && continue
      case "$(peer_state "$1" "$p")" in *" UpToDate") dk=UpToDate ;; esac
    done
    if [ "$dk" = UpToDate ]; then echo UpToDate >"$S/res/$1/disk"; publish "$1"; fi
  fi
  echo "$dk"
}
start_listener() {
  pidf="$S/res/$1/listener.pid"
  if [ -e "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then return 0; fi
  publish "$1"
  setsid "$BB" httpd -f -p "$(field "$1" "$(me_of "$1")" address)" -h "$S/www/$1" </dev/null >/dev/null 2>&1 &
  echo $! >"$pidf"
}
stop_listener() {
  pidf="$S/res/$1/listener.pid"
  [ -e "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
  rm -f "$pidf"
}

res_down() {
  r="$1"
  if is_up "$r"; then
    eff_disk "$r" >"$S/res/$r/disk.new" && mv "$S/res/$r/disk.new" "$S/res/$r/disk"
    stop_listener "$r"
    rm -f "$S/res/$r/up"
    echo Secondary >"$S/res/$r/role"
    publish "$r"
  fi
  return 0
}

drbdadm_cmd() {
  dry=0
  if [ "${1:-}" = -d ]; then dry=1; shift; fi
  cmd="$1"; shift
  case "$cmd" in
    adjust|dstate|get-gi|create-md|primary|down|up) ;;
    *) exec "$REAL_DRBDADM" "$cmd" "$@" ;;
  esac
  [ "${1:-}" = --force ] && shift
  r="$1"
  [ -e "$(resfile "$r")" ] || { echo "'$r' not defined in your config (for this host)." >&2; exit 10; }
  me="$(me_of "$r")" || exit 10
  D="$(d "$r")"
  case "$cmd" in
    adjust|up)
      [ -e "$S/module-loaded" ] || { echo "Failed to modprobe drbd (No such file or directory)" >&2; exit 20; }
      if [ "$dry" = 1 ]; then
        is_up "$r" || echo "drbdsetup new-resource $r $(field "$r" "$me" node-id)"
        return 0
      fi
      "$REAL_DRBDADM" sh-nop >/dev/null || exit 10
      if [ "$(field "$r" "$me" disk)" != none ]; then
        [ -e "$D/md" ] || { echo "No valid meta data found" >&2; exit 10; }
        [ -e "$D/disk" ] || echo Inconsistent >"$D/disk"
      else
        echo Diskless >"$D/disk"
      fi
      [ -e "$D/role" ] || echo Secondary >"$D/role"
      minor="$(field "$r" "$me" device)"
      [ -b "/dev/drbd$minor" ] || mknod "/dev/drbd$minor" b 147 "$minor"
      touch "$D/up"
      start_listener "$r" ;;
    dstate)
      is_up "$r" || { echo "$r: No such resource" >&2; exit 10; }
      eff_disk "$r" ;;
    get-gi)
      [ -e "$D/md" ] || { echo "No valid meta data found" >&2; exit 255; }
      echo "0000000000000004:0000000000000000:0:0:0:0:0:0:0:0" ;;
    create-md)
      vg="$(field "$r" "$me" disk)"; vg="${vg#/dev/}"
      [ -e "$S/vg/$vg" ] || { echo "open($(field "$r" "$me" disk)) failed: No such file or directory" >&2; exit 20; }
      touch "$D/md"; echo "New drbd meta data block successfully created." ;;
    primary)
      is_up "$r" || { echo "$r: No such resource" >&2; exit 10; }
      echo UpToDate >"$D/disk"; echo Primary >"$D/role"; publish "$r" ;;
    down) res_down "$r" ;;
  esac
}

events2() {
  r=""
  for a in "$@"; do case "$a" in --*) ;; *) r="$a" ;; esac; done
  if [ -n "$r" ] && is_up "$r"; then
    me="$(me_of "$r")"
    mydisk="$(eff_disk "$r")"
    echo "exists resource name:$r role:$(stored "$r" role Secondary) suspended:no force-io-failures:no may_promote:no promotion_score:0"
    conns=""; pdevs=""
    for p in $(hosts_of "$r"); do
      [ "$p" = "$me" ] && continue
      id="$(field "$r" "$p" node-id)"
      st="$(peer_state "$r" "$p")"
      if [ -n "$st" ]; then
        prole="${st% *}"; pdisk="${st#* }"
        case "$pdisk" in Inconsistent|Outdated) [ "$mydisk" = UpToDate ] && pdisk=UpToDate ;; esac
        conns="${conns}exists connection name:$r peer-node-id:$id conn-name:$p connection:Connected role:$prole congested:no ap-in-flight:0 rs-in-flight:0
"
        pdevs="${pdevs}exists peer-device name:$r peer-node-id:$id conn-name:$p volume:0 replication:Established peer-disk:$pdisk peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0 pending:0 unacked:0
"
      else
        conns="${conns}exists connection name:$r peer-node-id:$id conn-name:$p connection:Connecting role:Unknown congested:no ap-in-flight:0 rs-in-flight:0
"
        pdevs="${pdevs}exists peer-device name:$r peer-node-id:$id conn-name:$p volume:0 replication:Off peer-disk:DUnknown peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0 pending:0 unacked:0
"
      fi
    done
    printf '%s' "$conns"
    echo "exists device name:$r volume:0 minor:$(field "$r" "$me" device) disk:$mydisk client:no quorum:yes size:1048576 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no"
    printf '%s' "$pdevs"
  fi
  echo "exists -"
}

case "$tool" in
  drbdadm) drbdadm_cmd "$@" ;;
  drbdsetup)
    cmd="$1"; shift
    case "$cmd" in
      events2) events2 "$@" ;;
      status) is_up "$1" || { echo "$1: No such resource" >&2; exit 10; } ;;
      down) res_down "$1" ;;
      *) echo "drbdsetup stand-in: $cmd is not scripted" >&2; exit 20 ;;
    esac ;;
  modprobe)
    for a in "$@"; do
      if [ "$a" = drbd ]; then touch "$S/module-loaded"; exit 0; fi
    done
    exec bash -c 'exec -a modprobe /usr/bin/kmod "$@"' modprobe "$@" ;;
  lsmod)
    echo "Module                  Size  Used by"
    [ -e "$S/module-loaded" ] && echo "drbd                  999424  0"
    exit 0 ;;
  modinfo)
    if [ "$*" = "-F version drbd" ]; then echo 9.2.12; exit 0; fi
    exec /usr/sbin/modinfo "$@" ;;
  lsblk)
    dev=""; for a in "$@"; do dev="$a"; done
    basename "$dev" ;;
  blkid)
    dev=""; for a in "$@"; do dev="$a"; done
    case "$dev" in
      /dev/drbd*) cat "$S/fs/${dev#/dev/drbd}" 2>/dev/null || exit 2 ;;
      *) if [ -e "$S/pv/$(basename "$dev")" ]; then echo LVM2_member; else exit 2; fi ;;
    esac ;;
  pvcreate)
    dev=""; for a in "$@"; do dev="$a"; done
    touch "$S/pv/$(basename "$dev")"; echo "  Physical volume \"$dev\" successfully created." ;;
  vgcreate)
    mkdir -p "$S/vg/$1"; echo "  Volume group \"$1\" successfully created" ;;
  vgs)
    [ -d "$S/vg/$1" ] || { echo "  Volume group \"$1\" not found" >&2; exit 5; } ;;
  lvs)
    [ -e "$S/vg/$1" ] && [ "${1#*/}" != "$1" ] || { echo "  Failed to find logical volume \"$1\"" >&2; exit 5; } ;;
  lvcreate)
    name=""; vg=""; pool=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --name) name="$2"; shift ;;
        --thinpool) pool="$2"; shift ;;
        --type|--virtualsize|--size|--wipesignatures|--chunksize|--zero|--extents) shift ;;
        --*) ;;
        *) vg="$1" ;;
      esac
      shift
    done
    [ -d "$S/vg/$vg" ] || { echo "  Volume group \"$vg\" not found" >&2; exit 5; }
    if [ -n "$pool" ] && [ ! -e "$S/vg/$vg/$pool" ]; then echo "  Thin pool $vg/$pool not found" >&2; exit 5; fi
    touch "$S/vg/$vg/$name"; echo "  Logical volume \"$name\" created." ;;
  lvremove)
    for a in "$@"; do
      case "$a" in
        --*) ;;
        *) rm -f "$S/vg/$a"; rm -rf "$S/res/${a#*/}"; echo "  Logical volume \"${a#*/}\" successfully removed." ;;
      esac
    done ;;
  mkfs)
    t="$2"; dev=""; for a in "$@"; do dev="$a"; done
    minor="${dev#/dev/drbd}"
    r="$(grep -l "minor $minor;" /etc/drbd.d/*.res | head -n 1)"; r="$(basename "$r" .res)"
    [ "$(stored "$r" role Secondary)" = Primary ] || { echo "mkfs: cannot open $dev: Wrong medium type" >&2; exit 1; }
    echo "$t" >"$S/fs/$minor" ;;
  docker)
    [ "$1" = volume ] || { echo "docker stand-in: only 'docker volume' is scripted" >&2; exit 1; }
    cmd="$2"; shift 2
    case "$cmd" in
      inspect)
        name=""; for a in "$@"; do name="$a"; done
        [ -e "$S/dvol/$name" ] || { echo "Error response from daemon: get $name: no such volume" >&2; exit 1; }
        cat "$S/dvol/$name" ;;
      create)
        t=""; dev=""; o=""; name=""
        while [ $# -gt 0 ]; do
          case "$1" in
            --driver) shift ;;
            --opt) case "$2" in type=*) t="${2#type=}" ;; device=*) dev="${2#device=}" ;; o=*) o=" ${2#o=}" ;; esac; shift ;;
            *) name="$1" ;;
          esac
          shift
        done
        echo "local $t $dev$o" >"$S/dvol/$name"; echo "$name" ;;
      rm)
        [ -e "$S/dvol/$1" ] || { echo "Error response from daemon: get $1: no such volume" >&2; exit 1; }
        rm -f "$S/dvol/$1"; echo "$1" ;;
      *) echo "docker stand-in: volume $cmd is not scripted" >&2; exit 1 ;;
    esac ;;
  *) echo "hive-drbd stand-in: unknown tool $tool" >&2; exit 127 ;;
esac
