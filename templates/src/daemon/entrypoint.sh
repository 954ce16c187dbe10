#!/bin/bash
# Runs one Ceph daemon in the foreground; see usage() for the interface.
#
# The daemon runs as a child rather than through exec so that this script, as the container's
# PID 1, forwards the signals a container engine sends (SIGTERM on stop) and exits with the
# daemon's own status.
set -euo pipefail

readonly PROG=entrypoint.sh

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

The ID must stay the same when the container is re-created, as the daemon's data dir and key
are named after it: it is never taken from the container's host name. When its variable is not
set, it is the short form of $NODE_NAME (e.g. Kubernetes' spec.nodeName); with neither, the
daemon does not start. OSD_ID has no default.

The daemon is started as
  BINARY -f --cluster $CLUSTER --conf $CEPH_CONF ID-OPTION
         --setuser $CEPH_USER --setgroup $CEPH_USER LOG-OPTIONS [ARG...]
where LOG-OPTIONS send the logs to stderr instead of files. First, $CEPH_RUN_DIR and the
daemon's data dir ($CEPH_DATA_DIR/<type>/$CLUSTER-<id> for mon, mgr, osd, mds and rgw) are
created and given to $CEPH_USER (the whole data dir when its owner differs, e.g. data written
by an image of the other package family: ceph is uid 167 on CentOS/Rocky, 64045 on Ubuntu).
An osd gets an open-files limit of $OSD_OPEN_FILES (default 1048576, or the hard limit when
lower).

Environment:
  CLUSTER        cluster name (default: ceph)
  CEPH_CONF      configuration file (default: /etc/ceph/$CLUSTER.conf); it must exist
  CEPH_USER      user and group the daemon switches to and owning its dirs; empty to keep the
                 current one and change no ownership (default: ceph)
  CEPH_RUN_DIR   admin sockets (default: /var/run/ceph)
  CEPH_DATA_DIR  data dirs (default: /var/lib/ceph)
  OSD_FSID       osd only: when set, `ceph-volume lvm activate --no-systemd $OSD_ID $OSD_FSID`
                 runs first
IDs are made of letters, digits, `.`, `_` and `-`.

SIGTERM and SIGINT stop the daemon with SIGTERM; SIGHUP is passed on (logs are reopened).
Exit status: the daemon's; 1 if it cannot be started; 2 for a usage error.
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

# Creates the directory $1 and gives it to $user: the whole tree when its owner differs.
prepare_dir() {
  local dir=$1
  mkdir -p "$dir" || fail "cannot create \`$dir\`"
  [[ -n $user ]] || return 0
  if [[ $(stat -c %U "$dir") != "$user" ]]; then
    chown -R "$user:$user" "$dir" || fail "cannot give \`$dir\` to \`$user\`"
  fi
}

child=

# Called from the traps of run_daemon.
# shellcheck disable=SC2317
forward() {
  local signal=$1 daemon_signal=$2
  printf '%s: received SIG%s, sending SIG%s to %s (pid %s)\n' \
    "$PROG" "$signal" "$daemon_signal" "$binary" "$child" >&2
  kill -s "$daemon_signal" "$child" 2>/dev/null || true
}

# Starts "$@" in the background and waits for it, passing signals on; returns its status.
run_daemon() {
  trap 'forward TERM TERM' TERM
  trap 'forward INT TERM' INT
  trap 'forward HUP HUP' HUP
  "$@" &
  child=$!
  local status=0
  wait "$child" || status=$?
  # A trapped signal interrupts `wait` with a status above 128: wait again until the daemon
  # itself has exited.
  while ((status > 128)) && kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  return "$status"
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

[[ -f $conf ]] || fail "configuration file \`$conf\` not found: mount the cluster's /etc/ceph"
command -v "$binary" >/dev/null || fail "\`$binary\` not found on PATH"

prepare_dir "$run_dir"
[[ -z $data_dir ]] || prepare_dir "$data_dir"
if [[ $daemon == osd ]]; then
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < open_files)); then
    open_files=$hard
  fi
  ulimit -n "$open_files" || fail "cannot raise the open-files limit to $open_files"
fi

user_args=()
if [[ -n $user ]]; then
  user_args=(--setuser "$user" --setgroup "$user")
fi
log_args=(--default-log-to-file=false --default-log-to-stderr=true --default-err-to-stderr=true)
if [[ $daemon == mon ]]; then
  log_args+=(--default-mon-cluster-log-to-file=false --default-mon-cluster-log-to-stderr=true)
fi

if [[ $daemon == osd && -n ${OSD_FSID-} ]]; then
  printf '%s: activating osd.%s (%s) with ceph-volume\n' "$PROG" "$OSD_ID" "$OSD_FSID" >&2
  ceph-volume lvm activate --no-systemd "$OSD_ID" "$OSD_FSID" ||
    fail "\`ceph-volume lvm activate\` failed for osd.$OSD_ID"
fi

command=("$binary" -f --cluster "$cluster" --conf "$conf" "${id_args[@]}" "${user_args[@]}"
  "${log_args[@]}" "$@")
printf '%s: starting %s\n' "$PROG" "${command[*]}" >&2
status=0
run_daemon "${command[@]}" || status=$?
printf '%s: %s exited with status %s\n' "$PROG" "$binary" "$status" >&2
exit "$status"
