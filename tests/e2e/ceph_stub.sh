#!/usr/bin/env bash
# Offline build of every buildable flavor's `daemon-base`, so that every RUN really executes:
# podman (chroot isolation, a private vfs storage root) builds each staged Dockerfile FROM a
# stand-in base image made from busybox-static, whose dnf, yum, rpm, curl, apt-get, dpkg, gpg and
# install are shell stubs recording every call (and the repository files present) under /stub.
# The flavors are staged with their base fields pointing at the stand-in image. The records are
# then checked against docs/packages.md: the exact package set, the repositories, the final
# verification over the full list, the lvm.conf edits and their checks, and the labels.
# aarch64 flavors are built on the host's arch: the stubs do not care, the templates are what is
# tested. Takes about 15 s per flavor on 2 cores (vfs).
# Needs: podman, busybox (static), dash. Prints `N passed, N failed` last; exit 1 on any failure or
# when the number of checks is not the expected one.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/matriochka-ceph-stub.XXXXXX)
passed=0
failed=0
namespace=matriochka-ceph-stub

cleanup() {
  if [ -n "${STUB_KEEP:-}" ]; then echo "kept $work"; else
    # The storage is private to this run: removing it removes every image the run made.
    rm -rf "$work" 2>/dev/null || podman unshare rm -rf "$work"
  fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
equals() { # equals DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else
    fail "$1"
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/    /' | head -20
  fi
}

for tool in podman busybox; do
  command -v "$tool" >/dev/null || { echo "ceph-stub: $tool is not installed (apt-get install podman busybox-static)"; exit 1; }
done

# A private storage root, so that this run never touches another's images.
# shellcheck source=tests/e2e/lib-podman.sh
. "$here/lib-podman.sh"
podman_store "$work/storage"
export CONTAINERS_STORAGE_CONF="$work/storage/storage.conf"

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || exit 1
tool="$repo/target/debug/matriochka"

echo "== stand-in base image from busybox-static (podman import, no network)"
root="$work/rootfs"
mkdir -p "$root/bin" "$root/usr/bin" "$root/sbin" "$root/usr/sbin" "$root/etc/yum.repos.d" \
  "$root/etc/apt/sources.list.d" "$root/etc/apt/preferences.d" "$root/tmp" "$root/stub" "$root/var/run" \
  "$root/usr/share/doc" "$root/run"
cp "$(command -v busybox)" "$root/bin/busybox"
# busybox-static prefers its own applets to PATH (its `rpm` and `dpkg` would run instead of the
# stubs), in its shell and its xargs: the shell is the host's dash and xargs the host's, with
# their libraries.
for binary in /bin/dash "$(command -v xargs)"; do
  for file in "$binary" $(ldd "$binary" | grep -oE '/[^ ]+'); do
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
  done
done
cp -L /bin/dash "$root/bin/sh"
stubs="sh dash xargs dnf yum rpm curl apt-get dpkg gpg install"
for applet in $(busybox --list); do
  case " $stubs " in *" $applet "*) continue ;; esac
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

# The stubs: every call goes to /stub/calls.log, one line, `tool arg...`.
cat >"$root/stub/lib.sh" <<'EOF'
record() { echo "$*" >>/stub/calls.log; }
# The stand-in Ceph version a repository gives: a pinned rpm-X.Y.Z/debian-X.Y.Z, else the
# release's stand-in latest point release.
stand_in_version() {
  repo=$(cat /etc/yum.repos.d/ceph.repo /etc/apt/sources.list.d/ceph.list 2>/dev/null |
    sed -n -E 's,.*download\.ceph\.com/(rpm|debian)-([^/ ]+).*,\2,p' | head -1)
  case $repo in
    reef) echo "18.2.7 reef" ;;
    squid) echo "19.2.3 squid" ;;
    tentacle) echo "20.2.1 tentacle" ;;
    18.*) echo "$repo reef" ;;
    19.*) echo "$repo squid" ;;
    20.*) echo "$repo tentacle" ;;
    *) echo "0.0.0 unknown" ;;
  esac
}
# Installs one package: its name on /stub/installed, and what later steps need of it.
install_package() {
  echo "$1" >>/stub/installed
  case $1 in
    ceph-common*)
      grep -q '^ceph:' /etc/passwd || { echo 'ceph:x:167:167:Ceph:/var/lib/ceph:/sbin/nologin' >>/etc/passwd; echo 'ceph:x:167:' >>/etc/group; }
      set -- $(stand_in_version)
      printf '#!/bin/sh\necho "ceph version %s (0000000000000000000000000000000000000000) %s (stable)"\n' "$1" "$2" >/usr/bin/ceph
      chmod 0755 /usr/bin/ceph ;;
    lvm2)
      mkdir -p /etc/lvm
      if [ -e /stub/broken-lvm ]; then
        printf 'activation {\n\tudev_sync = 1\n\tudev_rules = 1\n}\n' >/etc/lvm/lvm.conf
      elif [ "${STUB_FAMILY:-}" = deb ]; then
        # The deb family gets the lvm.conf of Debian's real lvm2 package.
        cp /stub/debian-lvm.conf /etc/lvm/lvm.conf
      else
        printf 'devices {\n\t# obtain_device_list_from_udev = 1\n}\nactivation {\n\tudev_sync = 1\n\tudev_rules = 1\n}\n' >/etc/lvm/lvm.conf
      fi ;;
    epel-release) printf '[epel]\nname=stub\n' >/etc/yum.repos.d/epel.repo ;;
  esac
}
# The packages of an install command line: the arguments that are not options.
install_all() {
  for arg; do
    case $arg in -*) ;; *) install_package "$arg" ;; esac
  done
}
EOF
cat >"$root/usr/bin/dnf" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "dnf $*"
case $1 in
  install)
    shift
    record "repos $(ls /etc/yum.repos.d | tr '\n' ' ')"
    install_all "$@" ;;
  copr)
    [ "$2" = enable ] || exit 1
    record "repos $(ls /etc/yum.repos.d | tr '\n' ' ')"
    grep -qx dnf-plugins-core /stub/installed || { echo "dnf: no such command: copr" >&2; exit 1; }
    name=$(echo "$4" | tr / -)
    [ "$3" = -y ] || name=$(echo "$3" | tr / -)
    printf '[copr]\nname=stub\n' >"/etc/yum.repos.d/_copr_$name.repo" ;;
  update | clean) ;;
  *) exit 1 ;;
esac
EOF
cat >"$root/usr/bin/rpm" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "rpm $*"
case $1 in
  --import) [ -s "$2" ] || { echo "rpm: cannot import $2" >&2; exit 1; } ;;
  -q)
    shift
    status=0
    for package; do
      grep -qxF "$package" /stub/installed || { echo "package $package is not installed"; status=1; }
    done
    exit $status ;;
  *) exit 1 ;;
esac
EOF
cat >"$root/usr/bin/apt-get" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "apt-get $*"
case $1 in
  update) record "sources $(ls /etc/apt/sources.list.d | tr '\n' ' ')" ;;
  install)
    shift
    # As ceph-mgr-cephadm's postinst: a service restart, which fails without a policy-rc.d
    # denying it (no init runs in a build).
    [ -x /usr/sbin/policy-rc.d ] || { echo "deb-systemd-invoke: failed to restart ceph-mgr.target" >&2; exit 100; }
    STUB_FAMILY=deb; install_all "$@" ;;
  upgrade | clean) ;;
  *) exit 1 ;;
esac
EOF
cat >"$root/usr/bin/dpkg" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "dpkg $*"
[ "$1" = -s ] || exit 1
shift
status=0
for package; do
  sed 's/=.*//' /stub/installed | grep -qxF "$package" || { echo "dpkg-query: package '$package' is not installed" >&2; status=1; }
done
exit $status
EOF
cat >"$root/usr/bin/curl" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "curl $*"
out=
while [ $# -gt 0 ]; do
  case $1 in -o) out=$2; shift ;; -*) ;; *) url=$1 ;; esac
  shift
done
[ -n "$out" ] && printf '# stub of %s\n[stub]\n' "$url" >"$out"
exit 0
EOF
cat >"$root/usr/bin/gpg" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "gpg $*"
EOF
cp "$root/usr/bin/dnf" "$root/usr/bin/yum"
sed -i 's/record "dnf /record "yum /' "$root/usr/bin/yum"
# busybox has no `install`: a stand-in for `install -d [-m MODE] [-o USER] [-g GROUP] DIR`.
cat >"$root/usr/bin/install" <<'EOF'
#!/bin/sh
. /stub/lib.sh
record "install $*"
mode= owner= group=
while [ $# -gt 1 ]; do
  case $1 in -d) ;; -m) mode=$2; shift ;; -o) owner=$2; shift ;; -g) group=$2; shift ;; *) exit 1 ;; esac
  shift
done
grep -q "^$owner:" /etc/passwd || { echo "install: invalid user '$owner'" >&2; exit 1; }
mkdir -p "$1" && chmod "$mode" "$1"
EOF
chmod 0755 "$root"/usr/bin/*
# Debian's lvm2 ships its settings commented out (`# udev_sync = 1`, `# obtain_device_list_from_udev
# = 0`), which the edit must handle: the deb family's stub install puts that real file in place.
# apt-get download needs the package lists (.ci/run's apt-get update); cached under ~/.cache.
lvm_cache=${XDG_CACHE_HOME:-$HOME/.cache}/matriochka
mkdir -p "$lvm_cache"
if [ ! -s "$lvm_cache/debian-lvm.conf" ]; then
  (cd "$work" && apt-get download lvm2 >"$work/lvm2.download.log" 2>&1) &&
    dpkg-deb --fsys-tarfile "$work"/lvm2_*.deb | tar -xO ./etc/lvm/lvm.conf >"$lvm_cache/debian-lvm.conf.tmp" &&
    mv "$lvm_cache/debian-lvm.conf.tmp" "$lvm_cache/debian-lvm.conf"
fi
if ! grep -q 'obtain_device_list_from_udev' "$lvm_cache/debian-lvm.conf" 2>/dev/null; then
  echo "cannot get Debian's lvm.conf (apt-get download lvm2: run apt-get update)" >&2
  cat "$work/lvm2.download.log" >&2 2>/dev/null
  exit 1
fi
cp "$lvm_cache/debian-lvm.conf" "$root/stub/debian-lvm.conf"
: >"$root/stub/installed"
tar -C "$root" -cf "$work/base.tar" . || exit 1
base=localhost/$namespace/base
podman import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$work/base.tar" "$base:import" >/dev/null || exit 1
touch "$root/stub/broken-lvm"
tar -C "$root" -cf "$work/broken.tar" . || exit 1
podman import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$work/broken.tar" "$base:broken-lvm" >/dev/null || exit 1

# A stand-in release key: an armored public-key packet (old format, tag 6), whose fingerprint the
# build checks as it checks the real key's (CEPH_KEY_FINGERPRINT).
printf '\231\000\010stand-in' >"$work/key.bin"
{
  echo "-----BEGIN PGP PUBLIC KEY BLOCK-----"
  echo
  base64 "$work/key.bin"
  echo "=AAAA"
  echo "-----END PGP PUBLIC KEY BLOCK-----"
} >"$work/stand-in-release.asc"
key_fingerprint=$(sha1sum "$work/key.bin" | cut -c1-40 | tr a-f A-F)

echo "== staging every buildable flavor on the stand-in base"
project="$work/project"
mkdir -p "$project"
cp -r "$repo/flavors" "$repo/templates" "$project/"
mapfile -t flavors < <("$tool" -C "$project" show flavors)
[ "${#flavors[@]}" -gt 0 ] || { echo "ceph-stub: no buildable flavor"; exit 1; }
stub_flavors=()
for flavor in "${flavors[@]}"; do
  IFS=, read -r rel arch distro version _registry _repo tag <<<"$flavor"
  stub_flavors+=("$rel,$arch,$distro,$version,localhost,$namespace/base,$tag")
  podman tag "$base:import" "$base:$tag" >/dev/null || exit 1
done
export RELEASE=stub TAG_REGISTRY=localhost/$namespace
unset OSD_FLAVOR CEPH_DEVEL DAEMON_BASE_TAG DAEMON_TAG
"$tool" -C "$project" stage "${stub_flavors[@]}" >"$work/stage.log" 2>&1 || { cat "$work/stage.log"; exit 1; }

# The package table of docs/packages.md → the packages of FAMILY, RELEASE, ARCH, PIN.
expected_packages() { # FAMILY RELEASE ARCH PIN
  awk -F'|' -v family="$1" -v release="$2" -v arch="$3" -v pin="$4" '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function selects(rule, value,   n, items, i, negate) {
      if (rule == "all") return 1
      negate = sub(/^all but /, "", rule)
      n = split(rule, items, ",")
      for (i = 1; i <= n; i++) if (trim(items[i]) == value) return !negate
      return negate
    }
    /^<!-- \/packages/ { inside = 0 }
    inside && header && !/^\| ---/ {
      name = trim($(col[family] + 1))
      if (trim($(col["when"] + 1)) != "" || name == "—") next
      if (!selects(trim($(col["releases"] + 1)), release) || !selects(trim($(col["arches"] + 1)), arch)) next
      print name (trim($(col["pin"] + 1)) == "yes" ? pin : "")
    }
    inside && !header { for (i = 2; i < NF; i++) col[trim($i)] = i - 1; header = 1 }
    /^<!-- packages/ { inside = 1 }
  ' "$repo/docs/packages.md"
}

# Expected repositories at the install, by family (and release): what the templates add.
expected_repos() { # FAMILY RELEASE
  case $1 in
    rpm)
      local names=(_copr_tchaikov-python-scikit-learn.repo ceph.repo epel.repo ganesha.repo)
      [ "$2" = reef ] && names+=(ceph-iscsi.repo tcmu-runner.repo)
      printf '%s\n' "${names[@]}" | sort | tr '\n' ' ' ;;
    deb) echo "ceph.list " ;;
  esac
}

# A file of an image, through podman create + cp (podman run is not available).
file_in() { # IMAGE PATH
  local id
  id=$(podman create "$1" /bin/true) || return 1
  podman cp "$id:$2" - | tar -xO
  podman rm "$id" >/dev/null
}

checks_per_flavor=8
for i in "${!flavors[@]}"; do
  flavor=${stub_flavors[$i]}
  vars=$("$tool" -C "$project" show vars "$flavor" 2>/dev/null)
  var() { sed -n "s/^$1=//p" <<<"$vars"; }
  id=$(basename "$(var STAGING_DIR)")
  family=$(var PKG_FAMILY)
  release=$(var CEPH_VERSION)
  image=$(var DAEMON_BASE_IMAGE)
  context="$project/$(var STAGING_DIR)/daemon-base"
  echo "== $id ($family): podman build of daemon-base"
  cp "$work/stand-in-release.asc" "$context/stand-in-release.asc"
  podman build --isolation chroot --pull=never --build-arg CEPH_KEY_URL=stand-in-release.asc \
    --build-arg CEPH_KEY_FINGERPRINT="$key_fingerprint" \
    -t "$image" "$context" >"$work/$id.build.log" 2>&1
  status=$?
  equals "$id: daemon-base builds, every RUN run" 0 "$status"
  [ "$status" = 0 ] || tail -20 "$work/$id.build.log" | sed 's/^/    /'
  file_in "$image" /stub/calls.log >"$work/$id.calls" 2>/dev/null
  file_in "$image" /etc/lvm/lvm.conf >"$work/$id.lvm.conf" 2>/dev/null

  expected=$(expected_packages "$family" "$release" "$(var HOST_ARCH)" "$(var CEPH_POINT_RELEASE)" | sort)
  # An empty or truncated list would compare equal to a broken install line.
  [ "$(wc -l <<<"$expected")" -ge 30 ] || expected="(no package table for $family in docs/packages.md)"
  case $family in
    rpm) install_line=$(grep -E '^dnf install .*--enablerepo=' "$work/$id.calls" | tail -1)
      verify_line=$(grep -E '^rpm -q ' "$work/$id.calls" | tail -1) ;;
    deb) install_line=$(grep -E '^apt-get install ' "$work/$id.calls" | tail -1)
      verify_line=$(grep -E '^dpkg -s ' "$work/$id.calls" | tail -1) ;;
  esac
  args() { tr ' ' '\n' <<<"$1" | grep -v -e '^-' -e '^$' | tail -n +"$2" | sort; }
  equals "$id: the install asked for exactly docs/packages.md's packages" "$expected" "$(args "$install_line" 3)"
  case $family in
    rpm) verified=$(args "$verify_line" 2) ;;
    deb) verified=$(args "$verify_line" 2); expected=$(cut -d= -f1 <<<"$expected" | sort) ;;
  esac
  equals "$id: the final verification covered the full list" "$expected" "$verified"
  case $family in
    rpm) repos=$(grep -A1 -E '^dnf install .*--enablerepo=' "$work/$id.calls" | sed -n 's/^repos //p' | tail -1)
      crb=$(grep -cE '^dnf install .*--enablerepo=crb( |$)' "$work/$id.calls") ;;
    deb) repos=$(grep -A1 -E '^apt-get update' "$work/$id.calls" | sed -n 's/^sources //p' | tail -1)
      crb=1 ;;
  esac
  equals "$id: repositories present at the install (and CRB enabled on rpm)" \
    "$(expected_repos "$family" "$release")/1" "$(tr ' ' '\n' <<<"$repos" | grep -v '^$' | sort | tr '\n' ' ')/$crb"
  order=$(grep -oE '^(rpm --import|dnf copr|dnf update|apt-get update|apt-get upgrade|dnf install|apt-get install)' "$work/$id.calls" | uniq | tr '\n' ,)
  case $family in
    rpm) want="rpm --import,dnf install,dnf copr,dnf update,dnf install," ;;
    deb) want="apt-get update,apt-get upgrade,apt-get install," ;;
  esac
  equals "$id: key, repositories and update come before the install" "$want" "$order"
  lvm=$(grep -E '^[[:space:]]*(udev_sync|udev_rules|obtain_device_list_from_udev) =' "$work/$id.lvm.conf" |
    tr -d '\t' | sed 's/^ *//' | sort | tr '\n' ,)
  equals "$id: lvm.conf tells LVM not to use udev" \
    "obtain_device_list_from_udev = 0,udev_rules = 0,udev_sync = 0," "$lvm"
  # Repositories without signature checks (gpgcheck=0) and CI ones (shaman's tcmu-runner,
  # ceph-iscsi) serve the install only: the released image has them disabled, as upstream's.
  unsigned=
  rm -rf "$work/$id.repos" && mkdir -p "$work/$id.repos"
  if [ "$family" = rpm ]; then
    id_c=$(podman create "$image" /bin/true) &&
      podman cp "$id_c:/etc/yum.repos.d/." "$work/$id.repos" && podman rm "$id_c" >/dev/null ||
      unsigned="(cannot read /etc/yum.repos.d)"
  fi
  for repo_file in "$work/$id.repos"/*.repo; do
    [ -e "$repo_file" ] || continue
    case $repo_file in
      */tcmu-runner.repo | */ceph-iscsi.repo) ;;
      *) grep -q '^gpgcheck=0' "$repo_file" || continue ;;
    esac
    if grep -q '^enabled=1' "$repo_file"; then unsigned="$unsigned $(basename "$repo_file")"; fi
  done
  equals "$id: no unsigned or CI repository is enabled in the image" "" "$unsigned"
  labels=$(podman image inspect --format '{{index .Config.Labels "ceph"}} {{index .Config.Labels "CEPH_REF"}} {{index .Config.Labels "FROM_IMAGE"}}' "$image" 2>/dev/null)
  equals "$id: labels ceph=True, CEPH_REF, FROM_IMAGE" "True $release $(var BASE_IMAGE)" "$labels"
done

# The lvm.conf checks really run: a base whose lvm.conf lacks a setting fails the build.
first=${stub_flavors[0]}
IFS=, read -r rel arch distro version _registry _repo _tag <<<"$first"
"$tool" -C "$project" stage "$rel,$arch,$distro,$version,localhost,$namespace/base,broken-lvm" >/dev/null 2>&1
broken="$project/staging/$(basename "$("$tool" -C "$project" show vars "$rel,$arch,$distro,$version,localhost,$namespace/base,broken-lvm" | sed -n 's/^STAGING_DIR=//p')")/daemon-base"
cp "$work/stand-in-release.asc" "$broken/stand-in-release.asc"
podman build --isolation chroot --pull=never --build-arg CEPH_KEY_URL=stand-in-release.asc \
  --build-arg CEPH_KEY_FINGERPRINT="$key_fingerprint" \
  -t "localhost/$namespace/broken:1" "$broken" >"$work/broken.build.log" 2>&1
status=$?
grep -qF "grep -Eq '^[[:space:]]*obtain_device_list_from_udev = 0\$' /etc/lvm/lvm.conf" "$work/broken.build.log"
at_check=$?
equals "a missing lvm.conf setting fails the build at its check" "failed/0" "$([ $status -ne 0 ] && echo failed || echo built)/$at_check"

# The release key is checked: a key whose fingerprint is not the expected one fails the build.
podman build --isolation chroot --pull=never --build-arg CEPH_KEY_URL=stand-in-release.asc \
  --build-arg CEPH_KEY_FINGERPRINT=08B73419AC32B4E966C1A330E84AC2C0460F3994 \
  -t "localhost/$namespace/wrong-key:1" "$broken" >"$work/wrong-key.build.log" 2>&1
status=$?
grep -qF "the release key fetched has fingerprint $key_fingerprint, not 08B73419AC32B4E966C1A330E84AC2C0460F3994: refusing it" "$work/wrong-key.build.log"
said=$?
equals "a release key with another fingerprint fails the build, saying so" "failed/0" "$([ $status -ne 0 ] && echo failed || echo built)/$said"

expected_checks=$((${#flavors[@]} * checks_per_flavor + 2))
total=$((passed + failed))
if [ "$total" -ne "$expected_checks" ]; then
  fail "ran $total checks, expected $expected_checks"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
