#!/bin/bash
# Runs one Ceph daemon in the foreground; see usage() for the interface.
#
# The daemon runs as a child rather than through exec so that this script, as the container's
# PID 1, forwards the signals a container engine sends (SIGTERM on stop) and exits with the
# daemon's own status.
set -euo pipefail

readonly PROG=entrypoint.sh

# The daemons started (pid → binary), whether a stop was asked before they started, and whether
# one was passed on to them.
declare -A children=()
stopping=
stop_sent=

# Called from the traps below.
# shellcheck disable=SC2317
on_signal() {
  local signal=$1 daemon_signal=$2 pid
  if ((${#children[@]} == 0)); then
    # Nothing started yet: a stop ends the container before any daemon starts.
    [[ $daemon_signal == TERM ]] || return 0
    printf '%s: received SIG%s before the daemon started: not starting it\n' "$PROG" "$signal" >&2
    stopping=1
    return 0
  fi
  [[ $daemon_signal != TERM ]] || stop_sent=1
  for pid in "${!children[@]}"; do
    printf '%s: received SIG%s, sending SIG%s to %s (pid %s)\n' \
      "$PROG" "$signal" "$daemon_signal" "${children[$pid]}" "$pid" >&2
    kill -s "$daemon_signal" "$pid" 2>/dev/null || true
  done
}

# Set before anything else: a stop that comes while the dirs are prepared or the OSD is activated
# is not lost (nor does it kill this script half-way).
trap 'on_signal TERM TERM' TERM
trap 'on_signal INT TERM' INT
trap 'on_signal HUP HUP' HUP

# As upstream's image (ceph.git container/Containerfile): tcmalloc's thread caches may grow to
# 128 MiB in all.
export TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES=${TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES:-134217728}

usage() {
  cat <<'EOF'
usage: entrypoint.sh DAEMON [ARG...]

Runs one Ceph daemon in the foreground, configured from /etc/ceph.

DAEMON is one of:
  mon            ceph-mon       --id $MON_ID
  mgr            ceph-mgr       --id $MGR_ID
  osd            ceph-osd       --id $OSD_ID (the OSD's number)
  mds            ceph-mds       --id $MDS_ID
  rgw            radosgw        --name client.rgw.$RGW_ID
  rbd-mirror     rbd-mirror     --name client.rbd-mirror.$RBD_MIRROR_ID
  cephfs-mirror  cephfs-mirror  --name client.cephfs-mirror.$CEPHFS_MIRROR_ID
  ceph-exporter  ceph-exporter  --name client.ceph-exporter.$CEPH_EXPORTER_ID
  demo           ceph-mon, ceph-mgr and ceph-osd of a new one-node cluster (below)

The ID must stay the same when the container is re-created, as the daemon's data dir and key
are named after it: it is never taken from the container's host name. When its variable is not
set, it is the short form of $NODE_NAME (e.g. Kubernetes' spec.nodeName); with neither, the
daemon does not start. OSD_ID has no default.

The daemon is started as
  BINARY -f --cluster $CLUSTER --conf $CEPH_CONF ID-OPTION
         --setuser $CEPH_USER --setgroup $CEPH_USER LOG-OPTIONS [ARG...]
where LOG-OPTIONS send the logs to stderr instead of files. First, $CEPH_RUN_DIR and the
daemon's data dir ($CEPH_DATA_DIR/<type>/$CLUSTER-<id> for mon, mgr, osd, mds and rgw) are
created and given to $CEPH_USER (the whole data dir when any entry in it has another owner,
e.g. a keyring written by root). Switching a cluster between the images of the two package
families (ceph is uid 167 on CentOS/Rocky, 64045 on Ubuntu/Debian) is not supported.
An osd gets an open-files limit of $OSD_OPEN_FILES (default 1048576, or the hard limit when
lower).

demo bootstraps, on its first start, a cluster of one mon, one mgr and one OSD (BlueStore on a
sparse file of $DEMO_OSD_SIZE bytes, default 10 GiB) on 127.0.0.1, keeping its configuration
and keys in $CEPH_DATA_DIR/demo, then runs the three daemons; `ceph` works inside the container
(podman exec). Mount a volume on $CEPH_DATA_DIR to keep the cluster. For trying the image out,
never for production. This image is not ceph-container's `daemon` image: it has neither its
commands nor its variables.

Environment:
  CLUSTER        cluster name (default: ceph)
  CEPH_CONF      configuration file (default: /etc/ceph/$CLUSTER.conf); it must exist
  CEPH_USER      user and group the daemon switches to and owning its dirs; empty to keep the
                 current one and change no ownership (default: ceph)
  CEPH_RUN_DIR   admin sockets (default: /var/run/ceph)
  CEPH_DATA_DIR  data dirs (default: /var/lib/ceph)
  OSD_FSID       osd only: when set, `ceph-volume lvm activate --no-systemd $OSD_ID $OSD_FSID`
                 runs first, and `ceph-volume lvm deactivate $OSD_ID $OSD_FSID` once the OSD
                 has exited
  TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES  exported to the daemons (default 134217728)
IDs are made of letters, digits, `.`, `_` and `-`.

SIGTERM and SIGINT stop the daemon with SIGTERM (before it started: it is not started, exit 0);
SIGHUP is passed on (logs are reopened). When one daemon of demo exits, the others are stopped.
Exit status: the daemon's (demo: the first non-zero); 1 if it cannot be started; 2 for a usage
error.
EOF
}

# Prints the usage to stderr after an error, and exits 2.
usage_error() {
  printf '%s: error: %s\n\n' "$PROG" "$1" >&2
  usage >&2
  exit 2
}

fail() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  exit 1
}

# Sets `id` to the value of the variable named $1, else to the short form of $NODE_NAME. Never
# the container's host name: a container id changes when the container is re-created.
set_daemon_id() {
  local name=$1
  id=${!name-}
  if [[ -z $id ]]; then
    id=${NODE_NAME-}
    id=${id%%.*}
    [[ -n $id ]] ||
      usage_error "\`$name\` is not set (nor \`NODE_NAME\`): set it to a name that stays the same when the container is re-created"
  fi
  [[ $id =~ ^[A-Za-z0-9._-]+$ ]] ||
    usage_error "\`$name\` must be made of letters, digits, \`.\`, \`_\` and \`-\`, not \`$id\`"
}

# Creates the directory $1 and gives it to $user: the whole tree when any entry in it has
# another owner or group (a keyring written by root, data of the other package family's image).
prepare_dir() {
  local dir=$1 owners
  mkdir -p "$dir" || fail "cannot create \`$dir\`"
  [[ -n $user ]] || return 0
  owners=$(find "$dir" -printf '%u:%g\n' | sort -u) || fail "cannot read \`$dir\`"
  if [[ $owners != "$user:$user" ]]; then
    chown -R "$user:$user" "$dir" || fail "cannot give \`$dir\` to \`$user\`"
  fi
}

# Exits 0 when a stop was asked before the daemons started.
exit_if_stopping() {
  if [[ -n $stopping ]]; then
    deactivate_osd
    exit 0
  fi
}

# Starts "$@" in the background as one of the daemons.
start_child() {
  exit_if_stopping
  "$@" &
  children[$!]=${1##*/}
}

# Waits for every daemon started, passing signals on (the traps); when one exits by itself, the
# others are stopped (once: a Ceph daemon handles only its first SIGTERM, a second one kills it).
# Returns the first non-zero status, else 0.
wait_children() {
  local status=0 pid=0 done_pid result
  while ((${#children[@]} > 0)); do
    done_pid=
    result=0
    wait -n -p done_pid "${!children[@]}" || result=$?
    # A trapped signal interrupts `wait` (a status above 128, no pid): wait again.
    [[ -n ${done_pid-} ]] || continue
    printf '%s: %s exited with status %s\n' "$PROG" "${children[$done_pid]}" "$result" >&2
    unset "children[$done_pid]"
    ((status != 0)) || status=$result
    [[ -z $stop_sent ]] || continue
    stop_sent=1
    for pid in "${!children[@]}"; do
      printf '%s: stopping %s (pid %s)\n' "$PROG" "${children[$pid]}" "$pid" >&2
      kill -s TERM "$pid" 2>/dev/null || true
    done
  done
  return "$status"
}

osd_activated=
# Undoes `ceph-volume lvm activate` (its tmpfs mount, dm-crypt mappings) once the OSD has exited.
deactivate_osd() {
  [[ -n $osd_activated ]] || return 0
  osd_activated=
  printf '%s: deactivating osd.%s (%s) with ceph-volume\n' "$PROG" "$OSD_ID" "$OSD_FSID" >&2
  ceph-volume lvm deactivate "$OSD_ID" "$OSD_FSID" ||
    printf '%s: warning: %s failed for osd.%s\n' "$PROG" "\`ceph-volume lvm deactivate\`" "$OSD_ID" >&2
}

case ${1-} in
  -h | --help)
    usage
    exit 0
    ;;
  '')
    usage_error 'no daemon given'
    ;;
esac

daemon=$1
shift

case $daemon in
  mon) binary=ceph-mon id_variable=MON_ID ;;
  mgr) binary=ceph-mgr id_variable=MGR_ID ;;
  osd) binary=ceph-osd id_variable=OSD_ID ;;
  mds) binary=ceph-mds id_variable=MDS_ID ;;
  rgw) binary=radosgw id_variable=RGW_ID ;;
  rbd-mirror) binary=rbd-mirror id_variable=RBD_MIRROR_ID ;;
  cephfs-mirror) binary=cephfs-mirror id_variable=CEPHFS_MIRROR_ID ;;
  ceph-exporter) binary=ceph-exporter id_variable=CEPH_EXPORTER_ID ;;
  demo) binary=ceph-mon id_variable= ;;
  *) usage_error "unknown daemon \`$daemon\`" ;;
esac

case $daemon in
  osd)
    [[ -n ${OSD_ID-} ]] || usage_error "\`OSD_ID\` is required for \`osd\`"
    [[ $OSD_ID =~ ^[0-9]+$ ]] || usage_error "\`OSD_ID\` must be a number, not \`$OSD_ID\`"
    id=$OSD_ID
    id_args=(--id "$OSD_ID")
    ;;
  rgw | rbd-mirror | cephfs-mirror | ceph-exporter)
    set_daemon_id "$id_variable"
    id_args=(--name "client.$daemon.$id")
    ;;
  demo)
    id=demo
    id_args=()
    ;;
  *)
    set_daemon_id "$id_variable"
    id_args=(--id "$id")
    ;;
esac

cluster=${CLUSTER:-ceph}
[[ $cluster =~ ^[A-Za-z0-9._-]+$ ]] ||
  usage_error "\`CLUSTER\` must be made of letters, digits, \`.\`, \`_\` and \`-\`, not \`$cluster\`"
conf=${CEPH_CONF:-/etc/ceph/$cluster.conf}
user=${CEPH_USER-ceph}
run_dir=${CEPH_RUN_DIR:-/var/run/ceph}
data_root=${CEPH_DATA_DIR:-/var/lib/ceph}
case $daemon in
  mon | mgr | osd | mds) data_dir=$data_root/$daemon/$cluster-$id ;;
  rgw) data_dir=$data_root/radosgw/$cluster-rgw.$id ;;
  *) data_dir= ;;
esac

# As ceph-osd's systemd unit (LimitNOFILE); a container may not raise its hard limit.
open_files=${OSD_OPEN_FILES:-1048576}
[[ $open_files =~ ^[0-9]+$ ]] ||
  usage_error "\`OSD_OPEN_FILES\` must be a number, not \`$open_files\`"

user_args=()
if [[ -n $user ]]; then
  user_args=(--setuser "$user" --setgroup "$user")
fi
log_args=(--default-log-to-file=false --default-log-to-stderr=true --default-err-to-stderr=true)
mon_log_args=(--default-mon-cluster-log-to-file=false --default-mon-cluster-log-to-stderr=true)

# Raises the open-files limit for an OSD.
raise_open_files() {
  local hard
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < open_files)); then
    open_files=$hard
  fi
  ulimit -n "$open_files" || fail "cannot raise the open-files limit to $open_files"
}

# Prints a daemon's command line, then starts it in the background.
start_daemon() {
  printf '%s: starting %s\n' "$PROG" "$*" >&2
  start_child "$@"
}

# demo: a new one-node cluster (mon, mgr, one OSD on a file) in this one container, on
# 127.0.0.1, for trying the image out; not for production. Everything it needs, configuration
# and keys included, lives below $CEPH_DATA_DIR (a volume), so that a re-created container runs
# the same cluster again. /etc/ceph gets links to its configuration and admin key, for `ceph`.
demo_dir=$data_root/demo
demo_conf=$demo_dir/$cluster.conf
demo_admin=$demo_dir/$cluster.client.admin.keyring

demo_ceph() {
  ceph --cluster "$cluster" --conf "$demo_conf" --connect-timeout 30 "$@"
}

# Writes the configuration, the keys and the monitor's store.
demo_bootstrap_mon() {
  local fsid mon_dir=$data_root/mon/$cluster-demo
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$demo_conf" <<EOF
# The demo cluster of entrypoint.sh: one mon, one mgr, one OSD on 127.0.0.1. Not for production.
[global]
fsid = $fsid
mon initial members = demo
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.0/8
ms bind ipv6 = false
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
run dir = $run_dir
mon data = $data_root/mon/\$cluster-\$id
mgr data = $data_root/mgr/\$cluster-\$id
osd data = $data_root/osd/\$cluster-\$id
[client.admin]
keyring = $demo_admin
[osd]
osd objectstore = bluestore
# A sparse file in the OSD's data dir.
bluestore block size = ${DEMO_OSD_SIZE:-10737418240}
osd memory target = 1073741824
EOF
  if ! {
    ceph-authtool --create-keyring "$demo_dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' &&
      ceph-authtool --create-keyring "$demo_admin" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' &&
      ceph-authtool "$demo_dir/mon.keyring" --import-keyring "$demo_admin" &&
      monmaptool --conf "$demo_conf" --create --addv demo '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' \
        --fsid "$fsid" "$demo_dir/monmap"
  } >/dev/null; then
    fail "cannot write the demo's keys and monitor map"
  fi
  prepare_dir "$demo_dir"
  prepare_dir "$mon_dir"
  ceph-mon --cluster "$cluster" --conf "$demo_conf" --mkfs -i demo --monmap "$demo_dir/monmap" \
    --keyring "$demo_dir/mon.keyring" "${user_args[@]}" "${log_args[@]}" ||
    fail "\`ceph-mon --mkfs\` failed"
}

# Creates the mgr's key, then the OSD (its id, key and BlueStore on a file).
demo_bootstrap_daemons() {
  local mgr_dir=$data_root/mgr/$cluster-demo osd_uuid secret osd_id osd_dir
  prepare_dir "$mgr_dir"
  demo_ceph auth get-or-create mgr.demo mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    -o "$mgr_dir/keyring" || fail "cannot create the key of mgr.demo"
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  secret=$(ceph-authtool --gen-print-key) || fail "cannot make a key for the OSD"
  printf '{"cephx_secret": "%s"}\n' "$secret" >"$demo_dir/osd-secret.json"
  osd_id=$(demo_ceph osd new "$osd_uuid" -i "$demo_dir/osd-secret.json") ||
    fail "\`ceph osd new\` failed"
  rm -f "$demo_dir/osd-secret.json"
  osd_dir=$data_root/osd/$cluster-$osd_id
  mkdir -p "$osd_dir"
  ceph-authtool --create-keyring "$osd_dir/keyring" --name "osd.$osd_id" --add-key "$secret" \
    >/dev/null || fail "cannot write the key of osd.$osd_id"
  prepare_dir "$osd_dir"
  ceph-osd --cluster "$cluster" --conf "$demo_conf" --mkfs -i "$osd_id" --osd-uuid "$osd_uuid" \
    "${user_args[@]}" "${log_args[@]}" || fail "\`ceph-osd --mkfs\` failed"
  echo "$osd_id" >"$demo_dir/osd-id"
}

run_demo() {
  local ready osd_id
  mkdir -p "$demo_dir" || fail "cannot create \`$demo_dir\`"
  if [[ ! -e $demo_dir/bootstrapped ]]; then
    [[ ! -e $demo_conf ]] ||
      fail "\`$demo_dir\` holds a demo whose bootstrap did not finish: start on an empty volume"
    printf '%s: demo: bootstrapping a one-node cluster in %s (not for production)\n' "$PROG" "$data_root" >&2
    demo_bootstrap_mon
  fi
  if ! { mkdir -p /etc/ceph && ln -sfn "$demo_conf" "/etc/ceph/$cluster.conf" &&
    ln -sfn "$demo_admin" "/etc/ceph/$cluster.client.admin.keyring"; }; then
    fail "cannot link the demo's configuration into /etc/ceph"
  fi
  prepare_dir "$run_dir"
  prepare_dir "$data_root/mon/$cluster-demo"
  local common=(-f --cluster "$cluster" --conf "$demo_conf" "${user_args[@]}" "${log_args[@]}")
  start_daemon ceph-mon "${common[@]}" --id demo "${mon_log_args[@]}"
  ready=
  for _ in {1..60}; do
    if demo_ceph mon stat >/dev/null 2>&1; then ready=1 && break; fi
    exit_if_stopping
    sleep 1
  done
  [[ -n $ready ]] || fail "the demo's monitor did not answer within 60 s"
  if [[ ! -e $demo_dir/bootstrapped ]]; then
    demo_bootstrap_daemons
    touch "$demo_dir/bootstrapped"
  fi
  osd_id=$(cat "$demo_dir/osd-id")
  prepare_dir "$data_root/mgr/$cluster-demo"
  prepare_dir "$data_root/osd/$cluster-$osd_id"
  raise_open_files
  start_daemon ceph-mgr "${common[@]}" --id demo
  start_daemon ceph-osd "${common[@]}" --id "$osd_id"
  printf '%s: demo: running; try %s in this container\n' "$PROG" "\`ceph -s\`" >&2
  local status=0
  wait_children || status=$?
  exit "$status"
}

if [[ $daemon == demo ]]; then
  run_demo
fi

[[ -f $conf ]] || fail "configuration file \`$conf\` not found: mount the cluster's /etc/ceph"
command -v "$binary" >/dev/null || fail "\`$binary\` not found on PATH"

prepare_dir "$run_dir"
[[ -z $data_dir ]] || prepare_dir "$data_dir"
[[ $daemon != osd ]] || raise_open_files
[[ $daemon != mon ]] || log_args+=("${mon_log_args[@]}")

exit_if_stopping
if [[ $daemon == osd && -n ${OSD_FSID-} ]]; then
  printf '%s: activating osd.%s (%s) with ceph-volume\n' "$PROG" "$OSD_ID" "$OSD_FSID" >&2
  osd_activated=1
  if ! ceph-volume lvm activate --no-systemd "$OSD_ID" "$OSD_FSID"; then
    deactivate_osd
    fail "\`ceph-volume lvm activate\` failed for osd.$OSD_ID"
  fi
fi

start_daemon "$binary" -f --cluster "$cluster" --conf "$conf" "${id_args[@]}" "${user_args[@]}" \
  "${log_args[@]}" "$@"
status=0
wait_children || status=$?
deactivate_osd
exit "$status"
