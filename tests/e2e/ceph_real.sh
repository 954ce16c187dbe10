#!/usr/bin/env bash
# Real Ceph from the images: a real `make build` of the test flavor (Ceph 18.2.7 from Debian
# trixie's own archive, the only Ceph reachable offline), then a cluster from the built `daemon`
# image run through its own entrypoint, and its `demo` command.
#
# 1. The base image: `mmdebstrap --variant=minbase trixie`, set up as the official debian:trixie
#    image is (policy-rc.d exiting 101, apt's container settings), cached as a tarball under
#    ~/.cache/matriochka/ and imported into a private podman store as `localhost/debian:trixie`
#    (what the flavor's `FROM debian:trixie` finds there, with PULL=0).
# 2. `make build` of both images (daemon-base, daemon) in a temp copy of flavors/ and templates/,
#    tagged under the test's own namespace.
# 3. One-shot bootstrap containers (keyrings, monmap, `ceph-mon --mkfs`, `ceph osd new`,
#    `ceph-osd --mkfs`), then mon, mgr and one OSD on file-backed BlueStore, each in its own
#    container through the image's entrypoint, sharing one network namespace (a container on
#    `--network none`: loopback only) on 127.0.0.1. Checks: quorum, the OSD up and in, an object
#    round-trips byte for byte through `rados`, every PG active+clean, `podman stop` ends each
#    daemon with exit 0 within 10 s, the OSD re-created comes back with the object, and a
#    root-owned keyring in a ceph-owned data dir does not stop the mgr.
# 4. `IMAGE demo` in one container on a volume: the same round trip.
#
# trixie's ceph-mgr cannot load its PyO3-based Python modules ("subinterpreters"), so the mgr
# reports MGR_MODULE_DEPENDENCY: this test asserts on RADOS (the mon, the OSD, the objects, the
# PGs) and mutes that one health check only; the mgr is checked to be active.
#
# Containers run with `podman --cgroup-manager=cgroupfs --runtime runc run --ulimit ...` (what
# works on this machine kind); the OSDs also with `--security-opt seccomp=unconfined` (podman
# 4.3's default profile refuses io_pgetevents, which trixie's libaio uses; cephadm and Rook run
# OSDs privileged).
#
# Isolation: a private podman store (and engine tmp dir) in the run's temp dir; every container,
# volume and image of the run lives there, and the cleanup removes it whole. The only thing kept
# is the base tarball in the cache (CEPH_REAL_KEEP=1 keeps the temp dir too).
# Needs: root, podman, runc, mmdebstrap, cargo; Debian's archive (apt's network). Counts every
# check, compares the count with EXPECTED_CHECKS and prints `N passed, N failed` last.
set -uo pipefail
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES FLAVORS IMAGES FORCE JOBS STAGING_ROOT \
  DAEMON_TAG DAEMON_BASE_TAG CONTAINER_ENGINE BUILD_ARGS OSD_FLAVOR CEPH_DEVEL

EXPECTED_CHECKS=28
readonly flavor="reef,x86_64,debian,13,_,debian,trixie"
readonly namespace=localhost/matriochka-ceph-real
# Bump when the way the base tarball is made changes, so that a stale cache is not used.
readonly base_recipe=1

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/matriochka
tarball=$cache/debian-trixie-minbase-$base_recipe.tar
work=$(mktemp -d /tmp/matriochka-ceph-real.XXXXXX)
prefix=mceph-$$
passed=0
failed=0
started=$SECONDS

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
equals() { # equals DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

summary() {
  local total=$((passed + failed))
  if [ "$total" -ne "$EXPECTED_CHECKS" ]; then
    failed=$((failed + 1))
    echo "FAILED: $total checks ran, $EXPECTED_CHECKS expected"
  fi
  echo "$passed passed, $failed failed ($((SECONDS - started)) s)"
  [ "$failed" -eq 0 ]
}

pd() { podman --cgroup-manager=cgroupfs --runtime runc "$@"; }

cleanup() {
  # Every container here is this run's: the store is private.
  pd rm --all --force --time 0 >/dev/null 2>&1
  # What overlay left mounted below the store (its own bind mount), deepest first.
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r mount; do umount "$mount"; done
  if [ -n "${CEPH_REAL_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in podman runc mmdebstrap cargo; do
  command -v "$tool" >/dev/null || { echo "ceph-real: $tool is not installed"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "ceph-real: run as root (mmdebstrap, podman run)"; exit 1; }

# shellcheck source=tests/e2e/lib-podman.sh
. "$here/lib-podman.sh"
# overlay, not vfs: vfs copies the whole image (1.5 GB here) for every build step and container.
podman_store "$work/store" overlay
export CONTAINERS_STORAGE_CONF="$work/store/storage.conf"
# The engine's own state (container ids, exit files) beside the store, not in /run/libpod.
mkdir -p "$work/engine"
printf '[engine]\ntmp_dir = "%s"\nvolume_path = "%s"\n' "$work/engine/tmp" "$work/engine/volumes" \
  >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"

# Limits within this machine's hard limits (podman run needs them explicit here).
limit() { # limit HARD CAP: the hard limit, at most CAP
  if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}
nofile=$(limit "$(ulimit -Hn)" 1048576)
# runc here refuses an nproc limit above 32768 even within `ulimit -Hu`.
nproc=$(limit "$(ulimit -Hu)" 32768)
prun() { pd run --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@"; }

echo "== 1. base image: mmdebstrap --variant=minbase trixie (cache: $tarball)"
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  # As debuerreotype sets up the official image: services never start on install (policy-rc.d,
  # kept in the image, where mmdebstrap would remove its own), and apt keeps no caches nor
  # translations. mmdebstrap runs each hook with the root directory as $1.
  cat >"$work/policy-hook" <<'EOF'
#!/bin/sh
set -e
printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
chmod 0755 "$1/usr/sbin/policy-rc.d"
EOF
  cat >"$work/apt-hook" <<'EOF'
#!/bin/sh
set -e
d=$1/etc/apt/apt.conf.d
clean='rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true'
printf '%s\n' "DPkg::Post-Invoke { \"$clean\"; };" "APT::Update::Post-Invoke { \"$clean\"; };" \
  'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$d/docker-clean"
echo 'Acquire::Languages "none";' >"$d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$d/docker-autoremove-suggests"
EOF
  chmod 0755 "$work/policy-hook" "$work/apt-hook"
  if mmdebstrap --quiet --format=tar --variant=minbase --skip=chroot/policy-rc.d \
    --extract-hook="$work/policy-hook" --customize-hook="$work/apt-hook" \
    trixie "$tarball.tmp" >"$work/mmdebstrap.log" 2>&1; then
    mv "$tarball.tmp" "$tarball"
  else
    rm -f "$tarball.tmp"
    tail -20 "$work/mmdebstrap.log"
  fi
fi
pd import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' "$tarball" localhost/debian:trixie >/dev/null 2>"$work/import.err"
equals "the base tarball is made (or cached) and imported" 0 $?
equals "the base holds policy-rc.d exiting 101, as the official image" 101 \
  "$(prun --rm --network none localhost/debian:trixie /usr/sbin/policy-rc.d; echo $?)"

echo "== 2. make build of $flavor (both images)"
project=$work/project
mkdir -p "$project"
cp -r "$repo/flavors" "$repo/templates" "$project/"
export RELEASE=real TAG_REGISTRY=$namespace
make -C "$project" -f "$repo/Makefile" build FLAVORS="$flavor" CONTAINER_ENGINE=podman \
  BUILD_ARGS="--isolation chroot" PULL=0 >"$work/build.log" 2>&1
status=$?
equals "make build exits 0" 0 "$status"
[ "$status" = 0 ] || tail -30 "$work/build.log"
equals "the test flavor is flavors.test's" "$flavor" \
  "$("$repo/target/release/matriochka" -C "$repo" show flavors --test 2>&1)"
# Never pushed: `make push` refuses the test flavor with one line before any build or push.
make -C "$project" -f "$repo/Makefile" push FLAVORS="$flavor" CONTAINER_ENGINE=podman \
  BUILD_ARGS="--isolation chroot" PULL=0 >"$work/push.log" 2>&1
push_status=$?
refused=$(grep -cF "error: flavor \`$flavor\` is a test flavor (\`flavors.test\`" "$work/push.log")
pushes=$(grep -c '^\[[0-9]*/[0-9]*\] push' "$work/push.log")
equals "make push refuses the test flavor (exit 2, one line, nothing pushed)" "2 1 0" \
  "$push_status $refused $pushes"
vars=$("$repo/target/release/matriochka" -C "$project" show vars "$flavor" 2>/dev/null)
var() { sed -n "s/^$1=//p" <<<"$vars"; }
image=$(var DAEMON_IMAGE)
base_image=$(var DAEMON_BASE_IMAGE)
both_built() { pd image exists "$base_image" && pd image exists "$image"; }
check "both images are built (daemon-base, daemon)" both_built
description=$(pd image inspect --format '{{index .Config.Labels "org.opencontainers.image.description"}}' "$base_image")
check "the description says where Ceph comes from" \
  grep -qF "Ceph 18.2.7 from Debian trixie, not download.ceph.com" <<<"$description"
recorded=$(prun --rm --network none --entrypoint cat "$image" /etc/ceph-container-version 2>&1)
check "the image records the installed version and sha1 ($recorded)" \
  grep -qE '^ceph version 18\.2\.7 \([0-9a-f]{40}\) reef \(stable\)$' <<<"$recorded"
[ "$status" = 0 ] || { summary; exit 1; }

echo "== 3. a cluster: mon, mgr and one OSD, each in its own container"
etc=$work/etc
lib=$work/lib
mkdir -p "$etc" "$lib/mon" "$lib/mgr/ceph-x" "$lib/osd/ceph-0"
net=$prefix-net
prun -d --name "$net" --network none --entrypoint sleep "$image" infinity >/dev/null
mounts=(-v "$etc:/etc/ceph" -v "$lib:/var/lib/ceph")
# oneshot BINARY ARG...: one command in a container of the image, on the cluster's network.
oneshot() {
  local binary=$1
  shift
  prun --rm --network "container:$net" --security-opt seccomp=unconfined "${mounts[@]}" \
    --entrypoint "$binary" "$image" "$@"
}
# daemon NAME DAEMON [PODMAN-OPTION...]: the entrypoint runs DAEMON in container $prefix-NAME.
daemon() {
  local name=$1 what=$2
  shift 2
  prun -d --name "$prefix-$name" --network "container:$net" "${mounts[@]}" "$@" "$image" "$what" \
    >/dev/null
}
ceph() { oneshot ceph --connect-timeout 10 "$@"; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 2
  done
}
# stop_daemon NAME: `podman stop` (10 s before SIGKILL), then "exit <code> in <seconds>s".
stop_daemon() {
  local begin=$SECONDS code
  pd stop --time 10 "$prefix-$1" >/dev/null
  code=$(pd inspect --format '{{.State.ExitCode}}' "$prefix-$1")
  if [ $((SECONDS - begin)) -lt 10 ]; then echo "exit $code within 10 s"; else echo "exit $code after $((SECONDS - begin)) s"; fi
}
logs_of() { pd logs "$prefix-$1" 2>&1 | tail -15 | sed 's/^/    /'; }

fsid=$(cat /proc/sys/kernel/random/uuid)
# Only what the daemons need to find the mon; the one-node settings go to the mon's configuration
# database once it runs (`ceph config set`), before the mgr creates its pool.
cat >"$etc/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.0/8
EOF
oneshot ceph-authtool --create-keyring /etc/ceph/ceph.mon.keyring --gen-key -n mon. \
  --cap mon 'allow *' >/dev/null &&
  oneshot ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key \
    -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' \
    --cap mgr 'allow *' >/dev/null &&
  oneshot ceph-authtool /etc/ceph/ceph.mon.keyring --import-keyring \
    /etc/ceph/ceph.client.admin.keyring >/dev/null &&
  oneshot monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' --fsid "$fsid" \
    /etc/ceph/monmap >/dev/null &&
  oneshot ceph-mon --mkfs -i a --monmap /etc/ceph/monmap --keyring /etc/ceph/ceph.mon.keyring \
    >"$work/mkfs.log" 2>&1
equals "bootstrap: keyrings, monmap, ceph-mon --mkfs" 0 $?

daemon mon mon -e MON_ID=a
wait_for 60 ceph mon stat
quorum=$(ceph quorum_status --format json 2>&1)
check "the mon forms a quorum" grep -qF '"quorum_names":["a"]' <<<"$quorum" || logs_of mon
settings=(
  "global osd_pool_default_size 1"
  "global mon_allow_pool_size_one true"
  "global mon_warn_on_pool_no_redundancy false"
  "mon auth_allow_insecure_global_id_reclaim false"
  "osd osd_memory_target 1073741824"
  # The run's temp dir is on the host's disk: its free space is the host's business.
  "mon mon_data_avail_warn 1"
)
for setting in "${settings[@]}"; do
  read -r who name value <<<"$setting"
  ceph config set "$who" "$name" "$value" || echo "ceph config set $setting failed"
done

# The mgr's key is written by root (0600) into a data dir the ceph user already owns: the
# entrypoint must give the whole dir to ceph, not only look at the dir itself.
ceph_uid=$(oneshot id -u ceph)
ceph auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
  -o /var/lib/ceph/mgr/ceph-x/keyring >/dev/null
chown "$ceph_uid:$ceph_uid" "$lib/mgr/ceph-x"
chmod 0600 "$lib/mgr/ceph-x/keyring"
owners="$(stat -c %u "$lib/mgr/ceph-x") $(stat -c %u "$lib/mgr/ceph-x/keyring")"
daemon mgr mgr -e MGR_ID=x
wait_for 60 ceph mgr dump --format json
mgr_available() { ceph mgr stat --format json | grep -q '"available": *true'; }
wait_for 60 mgr_available
check "a root-owned keyring in the ceph-owned dir ($owners) does not stop the mgr" mgr_available ||
  logs_of mgr
equals "the entrypoint gave the keyring to ceph" "$ceph_uid" "$(stat -c %u "$lib/mgr/ceph-x/keyring")"

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
secret=$(oneshot ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}\n' "$secret" >"$etc/osd-secret.json"
osd_id=$(ceph osd new "$osd_uuid" -i /etc/ceph/osd-secret.json 2>"$work/osd-new.err")
equals "bootstrap: ceph osd new gives osd.0" 0 "$osd_id"
oneshot ceph-authtool --create-keyring /var/lib/ceph/osd/ceph-0/keyring --name osd.0 \
  --add-key "$secret" >/dev/null &&
  oneshot ceph-osd --mkfs -i 0 --osd-uuid "$osd_uuid" --bluestore-block-size 5368709120 \
    >"$work/osd-mkfs.log" 2>&1
status=$?
equals "bootstrap: ceph-osd --mkfs on file-backed BlueStore" 0 "$status"
[ "$status" = 0 ] || tail -15 "$work/osd-mkfs.log"
osd=(-e OSD_ID=0 --security-opt seccomp=unconfined)
daemon osd osd "${osd[@]}"
osd_up_in() { ceph osd stat | grep -qE '^1 osds: 1 up .*, 1 in '; }
wait_for 120 osd_up_in
check "the OSD is up and in" osd_up_in || logs_of osd

ceph health mute MGR_MODULE_DEPENDENCY >/dev/null 2>&1
ceph osd pool create rt 8 >/dev/null 2>&1 && ceph osd pool application enable rt rados >/dev/null 2>&1
head -c 1048576 /dev/urandom >"$etc/object.in"
oneshot rados -p rt put object /etc/ceph/object.in
oneshot rados -p rt get object /etc/ceph/object.out
check "rados put/get round-trips 1 MiB byte for byte" cmp -s "$etc/object.in" "$etc/object.out"
all_clean() { ceph pg stat | grep -qE '^([0-9]+) pgs: \1 active\+clean;'; }
wait_for 120 all_clean
check "every PG is active+clean ($(ceph pg stat 2>&1 | cut -d';' -f1))" all_clean
health=$(ceph health 2>&1)
equals "health is OK with MGR_MODULE_DEPENDENCY muted" HEALTH_OK "${health%% *}"

equals "podman stop ends the OSD" "exit 0 within 10 s" "$(stop_daemon osd)"
pd rm "$prefix-osd" >/dev/null
daemon osd osd "${osd[@]}"
wait_for 120 osd_up_in
check "the OSD container re-created comes back up and in" osd_up_in || logs_of osd
rm -f "$etc/object.out"
wait_for 60 oneshot rados -p rt get object /etc/ceph/object.out
check "the object is read back after the OSD is re-created" cmp -s "$etc/object.in" "$etc/object.out"
equals "podman stop ends the OSD again" "exit 0 within 10 s" "$(stop_daemon osd)"
equals "podman stop ends the mgr" "exit 0 within 10 s" "$(stop_daemon mgr)"
equals "podman stop ends the mon" "exit 0 within 10 s" "$(stop_daemon mon)"
pd rm "$prefix-osd" "$prefix-mgr" "$prefix-mon" >/dev/null && pd rm --force --time 0 "$net" >/dev/null

echo "== 4. IMAGE demo: mon, mgr and one OSD in one container, on a volume"
demo=$prefix-demo
mkdir -p "$work/demo"
prun -d --name "$demo" --network none --security-opt seccomp=unconfined \
  -v "$work/demo:/var/lib/ceph" "$image" demo >/dev/null
in_demo() { pd exec "$demo" "$@"; }
demo_osd_up() { in_demo ceph --connect-timeout 10 osd stat | grep -qE '^1 osds: 1 up .*, 1 in '; }
wait_for 180 demo_osd_up
check "demo: the OSD is up and in" demo_osd_up || logs_of demo
in_demo ceph osd pool create rt 8 >/dev/null 2>&1
cp "$etc/object.in" "$work/demo/object.in"
in_demo rados -p rt put object /var/lib/ceph/object.in &&
  in_demo rados -p rt get object /var/lib/ceph/object.out
check "demo: rados put/get round-trips 1 MiB byte for byte" cmp -s "$etc/object.in" "$work/demo/object.out"
equals "demo: podman stop ends all three daemons" "exit 0 within 10 s" "$(stop_daemon demo)"
pd rm "$demo" >/dev/null
prun -d --name "$demo" --network none --security-opt seccomp=unconfined \
  -v "$work/demo:/var/lib/ceph" "$image" demo >/dev/null
rm -f "$work/demo/object.out"
wait_for 120 in_demo rados -p rt get object /var/lib/ceph/object.out
check "demo: a re-created container runs the same cluster, object included" \
  cmp -s "$etc/object.in" "$work/demo/object.out"

summary
