#!/bin/bash
# Managed by hive setup-hosts (backup step). Backs up and restores the
# services of the site into the admin's ~/backup on this repository server:
#
#   hive-backup [-l SERVICE,...]                 back up (the daily timer runs this)
#   hive-backup -r [-l SERVICE,...] [-t STAMP]   restore the latest (or STAMP's) backups
#   hive-backup -L                               list the services and the backups
#
# A service is backed up as its definitions in /var/lib/hive-backup.d/<service>
# say (written by hive deploy-services from the service's backup_scripts),
# inside its running container, found on the hives over their TLS Docker API;
# the site registry (hive-registry) is backed up from its volume. Every backup
# is backup-<name>-<stamp>.<ext>, with backup-<name>-latest.<ext> pointing to
# the newest. Messages go to standard error; standard output has one
# tab-separated result line per backup, for hive on the mother machine:
#   ok|failed|skipped <TAB> backup|restore <TAB> service <TAB> name <TAB> file <TAB> base64(detail)
set -u
export LC_ALL=C
. /etc/hive/backup.conf
defs=/var/lib/hive-backup.d
export DOCKER_CERT_PATH="$HIVE_BACKUP_HOME/.docker"
backupdir="$HIVE_BACKUP_HOME/backup"
prog=${0##*/}
stamp=$(date +%Y%m%d%H%M%S)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

message() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 2; }
b64() { printf %s "$1" | base64 -w0; }
unb64() { [ "$1" = - ] || printf %s "$1" | base64 -d; }
result() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$(b64 "${6:-}")"; }

services() {
  echo hive-registry
  [ -d "$defs" ] && ls "$defs"
}

# The definitions of a service, one line each: name ext days directory
# backup_command backup_file restore_command restore_file batch_scripts
# (each field base64, `-` when absent; batch_scripts base64 of lines).
definitions() {
  if [ "$1" = hive-registry ]; then
    echo "$(b64 hive-registry) $(b64 tar.gz) $(b64 "$HIVE_REGISTRY_CLEANUP_DAYS") $(b64 /var/lib/registry) - - - - -"
  else
    grep -v '^#' "$defs/$1"
  fi
}

# Finds the running container of service $1: sets ON (a hive, or `local`
# for the registry of this server) and CID; when there is none, WHY says
# what the hives answered (an engine that cannot be reached, the service's
# tasks and their errors).
find_container() {
  WHY=""
  if [ "$1" = hive-registry ]; then
    ON=local
    CID=$(docker ps -q --filter name='^registry$' --filter status=running)
    [ -n "$CID" ] && return 0
    WHY="the registry container is not running on this server"
    return 1
  fi
  local h out
  for h in $HIVE_BACKUP_HIVES; do
    if ! out=$(docker -H "tcp://$h:2376" --tlsverify ps -q --filter "label=com.docker.swarm.service.name=$1" \
      --filter status=running 2>&1); then
      WHY="$WHY; the Docker engine of $h did not answer: $(printf %s "$out" | tail -n1)"
      continue
    fi
    CID=$(printf '%s\n' "$out" | head -n1)
    if [ -n "$CID" ]; then ON=$h; return 0; fi
  done
  WHY="no running container of service $1 on $HIVE_BACKUP_HIVES$WHY"
  return 1
}

# Whether service $1 has a task that should run but is not running yet
# (being created, started or restarted): a backup then waits for it.
task_starting() {
  local h
  [ "$1" = hive-registry ] && return 1
  for h in $HIVE_BACKUP_HIVES; do
    docker -H "tcp://$h:2376" --tlsverify service ps -q --filter desired-state=running "$1" \
      --format '{{.CurrentState}}' 2>/dev/null | grep -qv '^Running' && return 0
  done
  return 1
}

# find_container, waiting up to HIVE_BACKUP_TASK_WAIT seconds (60) while
# the service's task is starting.
wait_container() {
  local end=$((SECONDS + ${HIVE_BACKUP_TASK_WAIT:-60}))
  until find_container "$1"; do
    if [ $SECONDS -ge $end ] || ! task_starting "$1"; then return 1; fi
    message "service $1: waiting for its task to run"
    sleep 2
  done
}

dk() {
  if [ "$ON" = local ]; then docker "$@"; else docker -H "tcp://$ON:2376" --tlsverify "$@"; fi
}
dexec() { dk exec -i "$CID" "$@"; }

# The registry's data is the volume of its container, read on this server.
registry_dir() { docker volume inspect -f '{{.Mountpoint}}' hive-registry-data; }

tail_of() { tail -c 2000 "$1"; }

backup_one() { # service name ext days directory bcmd bfile batch
  local svc=$1 name=$2 ext=$3 days=$4 dir=$5 bcmd=$6 bfile=$7 batch=$8
  local file="backup-$name-$stamp.$ext" part=".backup-$name-$stamp.$ext.part" err="$work/err"
  : >"$err"
  if [ -n "$batch" ]; then
    while IFS= read -r b; do
      [ -n "$b" ] || continue
      message "$svc: batch: $b"
      if ! dexec sh -c "$b" </dev/null >>"$err" 2>&1; then
        result failed backup "$svc" "$name" "" "batch script \`$b\` failed: $(tail_of "$err")"
        return 1
      fi
    done <<<"$batch"
  fi
  [ -n "$bcmd$dir" ] || return 0
  message "$svc: backup $name into $file"
  local ok=0 what
  if [ "$svc" = hive-registry ]; then
    what="archive of the registry's volume"
    tar czf - -C "$(registry_dir)" . >"$part" 2>"$err" && ok=1
  elif [ -n "$bcmd" ] && [ -n "$bfile" ]; then
    what="backup_command \`$bcmd\`"
    if dexec sh -c "$bcmd" >"$err" 2>&1; then
      what="reading backup_file $bfile"
      dexec cat "$bfile" >"$part" 2>"$err" && ok=1
    fi
  elif [ -n "$bcmd" ]; then
    what="backup_command \`$bcmd\`"
    dexec sh -c "$bcmd" >"$part" 2>"$err" && ok=1
  else
    what="archive of directory $dir"
    dexec tar czf - -C "$dir" . >"$part" 2>"$err" && ok=1
  fi
  if [ $ok = 1 ]; then
    mv -f "$part" "$file"
    ln -sfn "$file" "backup-$name-latest.$ext"
    chown "$HIVE_BACKUP_USER:" "$file" "backup-$name-latest.$ext" 2>/dev/null
    chmod 600 "$file"
    result ok backup "$svc" "$name" "$file" ""
  else
    rm -f "$part"
    result failed backup "$svc" "$name" "" "$what failed: $(tail_of "$err")"
  fi
  if [ "$days" != "" ]; then
    # Older than `cleanup_days_before` days, as the original; never the
    # file `latest` points to.
    local keep
    keep=$(readlink "backup-$name-latest.$ext" || true)
    find . -maxdepth 1 -type f -name "backup-$name-*.$ext" -daystart -mtime +"$days" ! -name "$keep" -print |
      while read -r old; do message "$svc: remove $old (older than $days days)"; rm -f "$old"; done
  fi
  [ $ok = 1 ]
}

restore_one() { # service name ext dir rcmd rfile from
  local svc=$1 name=$2 ext=$3 dir=$4 rcmd=$5 rfile=$6 from=$7
  local file="backup-$name-$from.$ext" err="$work/err"
  : >"$err"
  [ -n "$rcmd$dir" ] || return 0
  if [ ! -r "$file" ]; then
    result failed restore "$svc" "$name" "" "no backup $backupdir/$file"
    return 1
  fi
  local real
  real=$(readlink -f "$file")
  message "$svc: restore $name from ${real##*/}"
  local ok=0 what
  if [ "$svc" = hive-registry ]; then
    what="restore of the registry's volume"
    local d
    d=$(registry_dir) && gzip -t "$real" 2>"$err" && docker stop registry >/dev/null 2>>"$err" &&
      find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>>"$err" &&
      tar xzf "$real" -C "$d" 2>>"$err" && ok=1
    docker start registry >/dev/null 2>>"$err" || ok=0
  elif [ -n "$rcmd" ] && [ -n "$rfile" ]; then
    what="copy to restore_file $rfile"
    if dexec sh -c 'cat >"$1"' sh "$rfile" <"$real" 2>"$err"; then
      what="restore_command \`$rcmd\`"
      dexec sh -c "$rcmd" </dev/null >"$err" 2>&1 && ok=1
    fi
  elif [ -n "$rcmd" ]; then
    what="restore_command \`$rcmd\`"
    dexec sh -c "$rcmd" <"$real" >"$err" 2>&1 && ok=1
  else
    # Checked in the container before the directory is emptied.
    what="restore of directory $dir"
    dexec sh -c 't=/tmp/.hive-restore.tar.gz; cat >"$t" && tar tzf "$t" >/dev/null &&
      find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} + && tar xzf "$t" -C "$1"; s=$?; rm -f "$t"; exit $s' \
      sh "$dir" <"$real" >"$err" 2>&1 && ok=1
  fi
  if [ $ok = 1 ]; then
    result ok restore "$svc" "$name" "${real##*/}" ""
  else
    result failed restore "$svc" "$name" "${real##*/}" "$what failed: $(tail_of "$err")"
  fi
  [ $ok = 1 ]
}

list() {
  for s in $(services); do
    definitions "$s" | while read -r name ext days dir bcmd _; do
      [ "$dir$bcmd" != -- ] || continue
      printf 'service\t%s\t%s\t%s\n' "$s" "$(unb64 "$name")" "$(unb64 "$ext")"
    done
  done
  find . -maxdepth 1 -name 'backup-*' \( -type f -o -type l \) -printf '%f\t%s\t%T@\t%l\n' | sort |
    sed 's/^/file\t/'
}

mode=backup targets="" from=latest
while getopts rl:t:Lh opt; do
  case $opt in
  r) mode=restore ;;
  l) targets=${OPTARG//,/ } ;;
  t) from=$OPTARG ;;
  L) mode=list ;;
  *) die "usage: $prog [-r] [-l SERVICE,...] [-t STAMP] | -L" ;;
  esac
done
[ $# -ge $OPTIND ] && die "usage: $prog [-r] [-l SERVICE,...] [-t STAMP] | -L"
case $from in latest | [0-9]*[0-9]) ;; *) die "-t $from: not a stamp (YYYYmmddHHMMSS)" ;; esac
known=$(services | tr '\n' ' ')
[ -n "$targets" ] || targets=$known
for t in $targets; do
  case " $known " in *" $t "*) ;; *) die "no backup_scripts for service $t (services with backups: $known)" ;; esac
done

install -d -m 700 -o "$HIVE_BACKUP_USER" -g "$(id -gn "$HIVE_BACKUP_USER")" "$backupdir"
cd "$backupdir" || die "cannot enter $backupdir"
if [ $mode = list ]; then list; exit 0; fi
# One run at a time (the timer and a run from the mother).
exec 9>"$backupdir/.lock"
flock -w 3600 9 || die "another backup or restore holds $backupdir/.lock"

# A restore refuses to start while a service cannot be reached.
if [ $mode = restore ]; then
  for svc in $targets; do
    wait_container "$svc" ||
      die "service $svc: $WHY; nothing was restored (deploy the service, then restore)"
  done
fi

status=0
for svc in $targets; do
  if ! wait_container "$svc"; then
    result failed "$mode" "$svc" "" "" "$WHY"
    status=1
    continue
  fi
  while read -r name ext days dir bcmd bfile rcmd rfile batch; do
    name=$(unb64 "$name") ext=$(unb64 "$ext") days=$(unb64 "$days") dir=$(unb64 "$dir")
    bcmd=$(unb64 "$bcmd") bfile=$(unb64 "$bfile") rcmd=$(unb64 "$rcmd") rfile=$(unb64 "$rfile")
    batch=$(unb64 "$batch")
    if [ $mode = backup ]; then
      backup_one "$svc" "$name" "$ext" "$days" "$dir" "$bcmd" "$bfile" "$batch" </dev/null || status=1
    else
      restore_one "$svc" "$name" "$ext" "$dir" "$rcmd" "$rfile" "$from" </dev/null || status=1
    fi
  done < <(definitions "$svc")
done
exit $status
