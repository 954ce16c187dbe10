#!/usr/bin/env bash
# End-to-end test of a release across arches and machines, with real podman (chroot isolation),
# real arm64 emulation (qemu-user-static binfmt handlers) and Debian's docker-registry on a free
# loopback port. Three machines are three podman storage roots sharing only the registry:
# A pushes the x86_64 flavors, B the aarch64 ones (RUN steps emulated), C with an empty store runs
# `make manifest`. Then: a group with a missing arch is refused, a second `make manifest` pushes
# nothing, and a rolling tag is not moved back by an older point release (nor by an overlapping run). D, with an empty store
# and REUSE=1, builds nothing (every image is pulled by its content tag); after a fragment of one
# flavor changes, a fresh D builds exactly that flavor's image and its child and reuses the rest.
# Needs: podman, skopeo, docker-registry, busybox (static), python3, qemu-user-static with the
# qemu-aarch64 handler enabled, and either a cached busybox-static arm64 .deb or apt access to
# download one. Prints `N passed, N failed` last.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/matriochka-release.XXXXXX)
registry_pid=
passed=0
failed=0
# The number of checks below; a run that skips some fails.
expected=66

cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  # The machines' stores are below $work: removing it removes every image this test made.
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $work"; else
    chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"; fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
equals() { # equals DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
die() { echo "release e2e: $*"; exit 1; }

for tool in podman skopeo docker-registry busybox python3 dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install podman skopeo docker-registry busybox-static python3 qemu-user-static)"
done
binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
[ "$(head -1 "$binfmt" 2>/dev/null)" = enabled ] \
  || die "no enabled qemu-aarch64 binfmt handler in /proc/sys/fs/binfmt_misc: apt-get install qemu-user-static binfmt-support (and mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || exit 1
tool="$repo/target/debug/matriochka"

echo "== busybox base images: the host's binary and Debian's busybox-static:arm64"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/matriochka-e2e"
mkdir -p "$cache"
cached_deb() { local f; for f in "$cache"/busybox-static_*_arm64.deb; do [ -e "$f" ] && echo "$f" && return; done; }
deb=$(cached_deb)
if [ -z "$deb" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 || die "cannot add the arm64 architecture to dpkg (root needed)"
    apt-get update -qq || die "apt-get update failed"
  fi
  (cd "$cache" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$cache" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1); } \
    || die "cannot download busybox-static:arm64 (apt-get download)"
  deb=$(cached_deb)
fi
rootfs() { # rootfs DIR BUSYBOX: a tar of a busybox-only root file system
  mkdir -p "$1/bin"
  cp "$2" "$1/bin/busybox"
  for applet in sh cat echo true uname; do ln -s busybox "$1/bin/$applet"; done
  tar -C "$1" -cf "$1.tar" .
}
rootfs "$work/amd64" "$(command -v busybox)"
dpkg-deb -x "$deb" "$work/arm64-deb" || die "cannot unpack $deb"
rootfs "$work/arm64" "$work/arm64-deb/bin/busybox"

echo "== a registry on a free loopback port, marked insecure in registries.conf"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
cat >"$work/registries.conf" <<EOF
[[registry]]
location = "$reg"
insecure = true
EOF
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
for _ in $(seq 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://$reg/v2/')" 2>/dev/null && break
  sleep 0.2
done

echo "== the project: two images, the parent records \`uname -m\`"
src="$work/src"
mkdir -p "$src/flavors" "$src/templates/common/parent" "$src/templates/common/child"
cat >"$src/flavors/matriochka.toml" <<'EOF'
[layout]
templates = "templates"
layers = ["common", "arch/{HOST_ARCH}"]
images = ["parent", "child"]
staging_dir = "staging/{CEPH_VERSION}{CEPH_POINT_RELEASE}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}{CEPH_POINT_RELEASE}-{HOST_ARCH}"
manifest_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}{CEPH_POINT_RELEASE}"
rolling_tags = ["{IMAGE}:{RELEASE}-v{CEPH_MAJOR}"]

[flavors]
buildable = [
  "one-19.2.1,x86_64,busybox,1,localhost,e2e/busybox,amd64",
  "one-19.2.1,aarch64,busybox,1,localhost,e2e/busybox,arm64",
  "two,x86_64,busybox,1,localhost,e2e/busybox,amd64",
]
EOF
printf 'FROM __ENV_[BASE_IMAGE]__\nRUN uname -m > /arch\nCOPY release.txt /release.txt\n__PARENT_EXTRA__\n' \
  >"$src/templates/common/parent/Dockerfile"
# A per-arch fragment, the same on both arches until machine D changes the x86_64 one.
for arch in x86_64 aarch64; do
  mkdir -p "$src/templates/arch/$arch/parent"
  printf 'LABEL e2e.extra=common' >"$src/templates/arch/$arch/parent/__PARENT_EXTRA__"
done
printf 'release __ENV_[CEPH_VERSION]____ENV_[CEPH_POINT_RELEASE]__\n' >"$src/templates/common/parent/release.txt"
printf 'FROM __ENV_[PARENT_IMAGE]__\nRUN cat /arch > /child-arch\n' >"$src/templates/common/child/Dockerfile"
(cd "$src" && git init -q -b main . && git add -A \
  && git -c user.name=e2e -c user.email=e2e@example.com commit -qm fixture) || exit 1
commit=$(git -C "$src" rev-parse HEAD)

# shellcheck source=tests/e2e/lib-podman.sh
. "$here/lib-podman.sh"
machine() { # machine NAME: a project clone and an empty podman store
  podman_store "$work/$1"
  git clone -q "$src" "$work/$1/project"
}
on() { # on NAME COMMAND...: run in machine NAME's project with its store
  local name=$1; shift
  (cd "$work/$name/project" && CONTAINERS_STORAGE_CONF="$work/$name/storage.conf" "$@")
}
mk() { # mk NAME ARGS...: make in machine NAME
  local name=$1; shift
  on "$name" make -f "$repo/Makefile" MATRIOCHKA="$tool" CONTAINER_ENGINE=podman \
    BUILD_ARGS="--isolation chroot" PULL=0 RELEASE=e2e TAG_REGISTRY="$reg/e2e" "$@"
}
file_in() { # file_in IMAGE PATH: a file's content, through podman create + cp
  local id; id=$(podman create "$1" /bin/true 2>/dev/null) || return 1
  podman cp "$id:$2" - | tar -xO; podman rm "$id" >/dev/null
}
skopeo_raw() { skopeo inspect --registries-conf "$CONTAINERS_REGISTRIES_CONF" --raw "docker://$reg/e2e/$1"; }
# The platforms of a list, "linux/amd64 linux/arm64", or the media type of what is not a list.
platforms() {
  skopeo_raw "$1" 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)
if "manifests" not in m: print(m.get("mediaType", "not a list")); sys.exit()
print(m["mediaType"], " ".join(sorted(e["platform"]["os"] + "/" + e["platform"]["architecture"] for e in m["manifests"])))'
}
digest() { skopeo_raw "$1" 2>/dev/null | sha256sum | cut -d' ' -f1; }
all_tags() { python3 -c "import json, urllib.request; print(' '.join(sorted(json.load(urllib.request.urlopen('http://$reg/v2/e2e/$1/tags/list'))['tags'])))"; }
# The tags but content tags (mcid-…).
tags() { all_tags "$1" | tr ' ' '\n' | grep -v '^mcid-' | paste -sd' '; }

one_amd="one-19.2.1,x86_64,busybox,1,localhost,e2e/busybox,amd64"
one_arm="one-19.2.1,aarch64,busybox,1,localhost,e2e/busybox,arm64"
two_amd="two,x86_64,busybox,1,localhost,e2e/busybox,amd64"
two_arm="two,aarch64,busybox,1,localhost,e2e/busybox,arm64"
index=application/vnd.oci.image.index.v1+json

echo "== A pushes the x86_64 flavors"
machine A
on A podman import --arch amd64 "$work/amd64.tar" localhost/e2e/busybox:amd64 >/dev/null 2>&1 || die "podman import failed"
mk A push.all ARCHES=x86_64 >"$work/A.log" 2>&1
equals "A: make push.all ARCHES=x86_64 exits 0" 0 $?
equals "A: only the x86_64 images are in the registry" \
  "e2e-one-19.2.1-x86_64 e2e-two-x86_64" "$(tags parent)"
equals "A: each image is pushed under its content tag too" 2 \
  "$(all_tags parent | tr ' ' '\n' | grep -c '^mcid-[0-9a-f]\{20\}$')"

echo "== B pushes the aarch64 flavors, built under emulation"
machine B
on B podman import --arch arm64 "$work/arm64.tar" localhost/e2e/busybox:arm64 >/dev/null 2>&1 || die "podman import failed"
mk B push.all ARCHES=aarch64 >"$work/B.log" 2>&1
equals "B: make push.all ARCHES=aarch64 exits 0" 0 $?
equals "B: the arm64 parent's RUN ran as aarch64" aarch64 \
  "$(on B file_in "$reg/e2e/parent:e2e-one-19.2.1-aarch64" /arch)"
equals "B: the arm64 child's RUN ran as aarch64" aarch64 \
  "$(on B file_in "$reg/e2e/child:e2e-one-19.2.1-aarch64" /child-arch)"
equals "B: the arm64 image's platform" arm64 \
  "$(on B podman image inspect --format '{{.Architecture}}' "$reg/e2e/parent:e2e-one-19.2.1-aarch64")"
equals "registry: the per-arch tags of both machines" \
  "e2e-one-19.2.1-aarch64 e2e-one-19.2.1-x86_64 e2e-two-x86_64" "$(tags child)"

echo "== C, with an empty store, joins the arches"
machine C
equals "C: the store is empty" "" "$(on C podman images -q)"
flavors="$one_amd $one_arm $two_amd $two_arm"
mk C manifest FLAVORS="$flavors" >"$work/C1.log" 2>&1
equals "C: make manifest fails for the group with a missing arch" 2 $?
for image in parent child; do
  equals "C: $image list holds both platforms" "$index linux/amd64 linux/arm64" "$(platforms "$image:e2e-one-19.2.1")"
  equals "C: $image rolling tag is the same list" "$(digest "$image:e2e-one-19.2.1")" "$(digest "$image:e2e-v19")"
done
check "C: the list's entries are the per-arch digests" grep -q \
  "docker://$reg/e2e/parent@sha256:$(digest parent:e2e-one-19.2.1-aarch64)" "$work/C1.log"
check "C: refusal names the missing arch" grep -qF \
  "refused $reg/e2e/parent:e2e-two: arch \`aarch64\` is missing (\`$reg/e2e/parent:e2e-two-aarch64\` is not in the registry)" "$work/C1.log"
equals "C: nothing pushed for the refused group" \
  "e2e-one-19.2.1 e2e-one-19.2.1-aarch64 e2e-one-19.2.1-x86_64 e2e-two-x86_64 e2e-v19" "$(tags parent)"
equals "C: the list's revision is the commit's" "$commit" \
  "$(skopeo inspect --registries-conf "$CONTAINERS_REGISTRIES_CONF" --override-arch arm64 --config "docker://$reg/e2e/child:e2e-one-19.2.1" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["Labels"]["org.opencontainers.image.revision"])')"

echo "== a second make manifest pushes nothing"
before=$(digest parent:e2e-one-19.2.1)
mk C manifest FLAVORS="$one_amd $one_arm" >"$work/C2.log" 2>&1
equals "C: second make manifest exits 0" 0 $?
equals "C: no engine command ran" "" "$(grep -E '^\+ podman' "$work/C2.log")"
equals "C: every list up to date" 4 "$(grep -c '^up-to-date ' "$work/C2.log")"
equals "C: the list is unchanged" "$before" "$(digest parent:e2e-one-19.2.1)"

echo "== a rolling tag moves forward only"
older_amd="one-19.2.0,x86_64,busybox,1,localhost,e2e/busybox,amd64"
older_arm="one-19.2.0,aarch64,busybox,1,localhost,e2e/busybox,arm64"
mk A push FLAVORS="$older_amd" >"$work/A2.log" 2>&1 \
  && mk B push FLAVORS="$older_arm" >"$work/B2.log" 2>&1
equals "A and B push 19.2.0" 0 $?
v19=$(digest parent:e2e-v19)
mk C manifest FLAVORS="$older_amd $older_arm" >"$work/C3.log" 2>&1
equals "C: make manifest of 19.2.0 exits 0" 0 $?
equals "C: 19.2.0 has its own list" "$index linux/amd64 linux/arm64" "$(platforms parent:e2e-one-19.2.0)"
check "C: says the newer rolling tag was kept" grep -qF \
  "kept-newer $reg/e2e/parent:e2e-v19: it holds 19.2.1, newer than 19.2.0" "$work/C3.log"
equals "C: the rolling tag still points at 19.2.1" "$v19" "$(digest parent:e2e-v19)"
newer_amd="one-19.2.2,x86_64,busybox,1,localhost,e2e/busybox,amd64"
newer_arm="one-19.2.2,aarch64,busybox,1,localhost,e2e/busybox,arm64"
mk A push FLAVORS="$newer_amd" >"$work/A3.log" 2>&1 \
  && mk B push FLAVORS="$newer_arm" >"$work/B3.log" 2>&1 \
  && mk C manifest FLAVORS="$newer_amd $newer_arm" >"$work/C4.log" 2>&1
equals "19.2.2 pushed and joined" 0 $?
equals "C: the rolling tag moved forward to 19.2.2" "$(digest parent:e2e-one-19.2.2)" "$(digest parent:e2e-v19)"

echo "== arches built from different commits join when their content is the plan's"
three_amd="three,x86_64,busybox,1,localhost,e2e/busybox,amd64"
three_arm="three,aarch64,busybox,1,localhost,e2e/busybox,arm64"
on B git -c user.name=e2e -c user.email=e2e@example.com commit -q --allow-empty -m "B moves on"
other=$(on B git rev-parse HEAD)
mk A push FLAVORS="$three_amd" >"$work/A-three.log" 2>&1 \
  && mk B push FLAVORS="$three_arm" >"$work/B-three.log" 2>&1
equals "A and B push three from different commits" 0 $?
mk C manifest FLAVORS="$three_amd $three_arm" >"$work/C-three.log" 2>&1
equals "C: make manifest of arches from different commits but the plan's content exits 0" 0 $?
equals "C: the list of three holds both platforms" "$index linux/amd64 linux/arm64" "$(platforms child:e2e-three)"
check "C: the arm64 entry carries variant v8" grep -qF -- "--arch arm64 --variant v8" "$work/C-three.log"

echo "== C pulls the list for each platform"
equals "C: the arm64 entry ran as aarch64" aarch64 \
  "$(on C podman pull -q --arch arm64 "$reg/e2e/parent:e2e-one-19.2.1" >/dev/null 2>&1 && on C file_in "$reg/e2e/parent:e2e-one-19.2.1" /arch)"

echo "== D, with an empty store and REUSE=1, builds nothing"
machine D
equals "D: the store is empty" "" "$(on D podman images -q)"
mk D build FLAVORS="$one_amd $one_arm" REUSE=1 >"$work/D1.log" 2>&1
equals "D: make build REUSE=1 exits 0" 0 $?
equals "D: every image reused" 4 "$(grep -c ': reused$' "$work/D1.log")"
equals "D: no engine build ran" "" \
  "$(grep -c ': ok$' "$work/D1.log" | grep -vx 0; grep -rh '^podman build' "$work/D/project/staging/logs")"
equals "D: the reused arm64 child holds aarch64's output" aarch64 \
  "$(on D file_in "$reg/e2e/child:e2e-one-19.2.1-aarch64" /child-arch)"

echo "== a fragment of one flavor changes: a fresh D builds its image and child, reuses the rest"
mkdir -p "$work/D/project/templates/arch/x86_64/parent"
printf 'LABEL e2e.extra=x86_64' >"$work/D/project/templates/arch/x86_64/parent/__PARENT_EXTRA__"
chmod -R u+w "$work/D/root" "$work/D/run" 2>/dev/null
rm -rf "$work/D/root" "$work/D/run" "$work/D/project/staging/.stamps"
on D podman import --arch amd64 "$work/amd64.tar" localhost/e2e/busybox:amd64 >/dev/null 2>&1 || die "podman import failed"
mk D build FLAVORS="$one_amd $one_arm" REUSE=1 >"$work/D2.log" 2>&1
equals "D: make build REUSE=1 after the change exits 0" 0 $?
equals "D: built exactly the changed parent and its child" \
  "build $reg/e2e/child:e2e-one-19.2.1-x86_64: ok build $reg/e2e/parent:e2e-one-19.2.1-x86_64: ok" \
  "$(grep ': ok$' "$work/D2.log" | sed 's/^\[[0-9]*\/[0-9]*\] //' | sort | paste -sd' ')"
equals "D: reused the other flavor's images" \
  "build $reg/e2e/child:e2e-one-19.2.1-aarch64: reused build $reg/e2e/parent:e2e-one-19.2.1-aarch64: reused" \
  "$(grep ': reused$' "$work/D2.log" | sed 's/^\[[0-9]*\/[0-9]*\] //' | sort | paste -sd' ')"

echo "== 4a. a run that covers fewer arches than flavors.buildable is refused"
before=$(digest parent:e2e-one-19.2.1)
mk C manifest FLAVORS="$one_amd" >"$work/C-fewer.log" 2>&1
equals "C: make manifest of one arch of a two-arch tag fails" 2 $?
check "C: the refusal names the arch the run lacks" grep -qF \
  "refused $reg/e2e/parent:e2e-one-19.2.1: arch \`aarch64\` of \`flavors.buildable\` is not in this run (it has \`x86_64\`): add its flavors, or set FORCE=1 to join these alone" "$work/C-fewer.log"
equals "C: the two-arch list is untouched" "$before" "$(digest parent:e2e-one-19.2.1)"

echo "== 5a. two manifest groups with one rolling tag are refused when the configuration loads"
cp "$work/C/project/flavors/matriochka.toml" "$work/config.orig"
sed -i 's/^rolling_tags = \[/rolling_tags = ["{IMAGE}:{RELEASE}-latest", /' "$work/C/project/flavors/matriochka.toml"
on C env RELEASE=e2e TAG_REGISTRY="$reg/e2e" "$tool" check >"$work/C-collide.log" 2>&1
equals "C: check of a config giving two groups one rolling tag exits 1" 1 $?
equals "C: the error names both groups and the tag" \
  "error: manifest groups \`$reg/e2e/parent:e2e-one\` and \`$reg/e2e/parent:e2e-two\` both get tag \`$reg/e2e/parent:e2e-latest\` (\`layout.rolling_tags\` \`{IMAGE}:{RELEASE}-latest\`): a tag names one list; name in the pattern what separates the groups (e.g. \`{DISTRO}-{BASEOS_TAG}\`)" \
  "$(cat "$work/C-collide.log")"
cp "$work/config.orig" "$work/C/project/flavors/matriochka.toml"

echo "== 5b. an overlapping run that moves a rolling tag back after this run's push is repaired"
v3_amd="one-19.2.3,x86_64,busybox,1,localhost,e2e/busybox,amd64"
v3_arm="one-19.2.3,aarch64,busybox,1,localhost,e2e/busybox,arm64"
mk A push FLAVORS="$v3_amd" >"$work/A5.log" 2>&1 && mk B push FLAVORS="$v3_arm" >"$work/B5.log" 2>&1
equals "A and B push 19.2.3" 0 $?
# A podman that, right after pushing a list to the rolling tag, lets "another run" push the
# 19.2.0 list there (once per image), as a manifest run of 19.2.0 overlapping this one would.
mkdir -p "$work/race"
touch "$work/race/armed-parent" "$work/race/armed-child"
cat >"$work/race/podman" <<RACE
#!/bin/sh
$(command -v podman) "\$@" || exit
for a; do last=\$a; done
case "\$*:\$last" in
  *"manifest push"*:docker://*:e2e-v19)
    name=\${last##*/}; name=\${name%%:*}
    if [ -e "$work/race/armed-\$name" ]; then
      rm "$work/race/armed-\$name"
      skopeo copy -q --all --registries-conf "$CONTAINERS_REGISTRIES_CONF" "\${last%:e2e-v19}:e2e-one-19.2.0" "\$last" >&2
    fi;;
esac
RACE
chmod +x "$work/race/podman"
mk C manifest FLAVORS="$v3_amd $v3_arm" CONTAINER_ENGINE="$work/race/podman" >"$work/C5.log" 2>&1
equals "C: make manifest of 19.2.3 with an overlapping run exits 0" 0 $?
check "C: says it repaired the rolling tag" grep -qF \
  "repairing $reg/e2e/parent:e2e-v19: an overlapping run moved it back to 19.2.0 after this run pushed it" "$work/C5.log"
equals "C: the rolling tag holds 19.2.3" "$(digest parent:e2e-one-19.2.3)" "$(digest parent:e2e-v19)"

echo "== 1, 10: E changes the parent while the registry holds an older one; content tags go to CACHE_REPO"
machine E
on E podman import --arch amd64 "$work/amd64.tar" localhost/e2e/busybox:amd64 >/dev/null 2>&1 || die "podman import failed"
printf 'release __ENV_[CEPH_VERSION]____ENV_[CEPH_POINT_RELEASE]__ changed\n' >"$work/E/project/templates/common/parent/release.txt"
old_parent=$(digest parent:e2e-two-x86_64)
mk E push FLAVORS="$two_amd" CACHE_REPO="$reg/e2e/cache" >"$work/E1.log" 2>&1
equals "E: make push of the changed parent exits 0" 0 $?
check "E: the registry's older parent was replaced" [ "$old_parent" != "$(digest parent:e2e-two-x86_64)" ]
chmod -R u+w "$work/E/root" "$work/E/run" 2>/dev/null
rm -rf "$work/E/root" "$work/E/run"
equals "E: the pushed parent holds the new content" "release two changed" \
  "$(on E file_in "$reg/e2e/parent:e2e-two-x86_64" /release.txt)"
equals "E: the pushed child holds the new content" "release two changed" \
  "$(on E file_in "$reg/e2e/child:e2e-two-x86_64" /release.txt)"
e_cid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["content_id"][7:27])' \
  "$work/E/project/staging/two-x86_64/.matriochka/parent.json")
equals "E: the content tag is in CACHE_REPO" "mcid-$e_cid" "$(all_tags cache/parent)"
equals "E: not in the image's own repository" "" "$(all_tags parent | tr ' ' '\n' | grep -x "mcid-$e_cid")"
machine F
on F podman import --arch amd64 "$work/amd64.tar" localhost/e2e/busybox:amd64 >/dev/null 2>&1 || die "podman import failed"
cp "$work/E/project/templates/common/parent/release.txt" "$work/F/project/templates/common/parent/release.txt"
mk F build FLAVORS="$two_amd" REUSE=1 CACHE_REPO="$reg/e2e/cache" >"$work/F1.log" 2>&1
equals "F: make build REUSE=1 CACHE_REPO=… reuses both images from CACHE_REPO" "0 2" "$? $(grep -c ': reused$' "$work/F1.log")"

echo "== 2: a foreign image retagged under a flavor's tag is never pushed"
on F podman tag localhost/e2e/busybox:amd64 "$reg/e2e/parent:e2e-two-x86_64" || die "podman tag failed"
before=$(digest parent:e2e-two-x86_64)
mk F push FLAVORS="$two_amd" >"$work/F2.log" 2>&1
equals "F: make push of a foreign image fails" 2 $?
f_cid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["content_id"])' \
  "$work/F/project/staging/two-x86_64/.matriochka/parent.json")
check "F: the refusal says why" grep -qxF \
  "error: refused to push \`$reg/e2e/parent:e2e-two-x86_64\`: the local image carries no content id, not the plan's \`$f_cid\`" "$work/F2.log"
equals "F: nothing pushed under the tag" "$before" "$(digest parent:e2e-two-x86_64)"
equals "F: no engine push ran" "" "$(grep -E '^podman push|^\+ podman push' "$work/F2.log" "$work/F/project/staging/logs/two-x86_64/parent.push.log")"

echo "== 8: the same commit built on two stores gives the same image digests"
machine G
machine H
on G podman import --arch amd64 "$work/amd64.tar" localhost/e2e/busybox:amd64 >/dev/null 2>&1 || die "podman import failed"
on G podman save -q -o "$work/base.tar" localhost/e2e/busybox:amd64 || die "podman save failed"
on H podman load -q -i "$work/base.tar" >/dev/null || die "podman load failed"
mk G build FLAVORS="$two_amd" >"$work/G.log" 2>&1 && mk H build FLAVORS="$two_amd" >"$work/H.log" 2>&1
status=$?
if [ "$status" != 0 ]; then
  # Seen once in CI, not reproduced: show why, then build once more (the ids below are what this
  # section checks). The next session should find the cause in these lines.
  echo "G or H failed to build (status $status); their logs' ends, then one retry:"
  tail -n 15 "$work/G.log" "$work/H.log" 2>/dev/null | sed 's/^/    /'
  mk G build FLAVORS="$two_amd" >"$work/G.log" 2>&1 && mk H build FLAVORS="$two_amd" >"$work/H.log" 2>&1
  status=$?
fi
equals "G and H build" 0 "$status"
for image in parent child; do
  id_g=$(on G podman image inspect --format '{{.Id}}' "$reg/e2e/$image:e2e-two-x86_64")
  id_h=$(on H podman image inspect --format '{{.Id}}' "$reg/e2e/$image:e2e-two-x86_64")
  equals "G, H: $image has the same image id" "${id_g:-no image in G}" "$id_h"
done
equals "G: the image's creation label is the commit's date" "$(git -C "$src" log -1 --format=%cI)" \
  "$(on G podman image inspect --format '{{index .Labels "org.opencontainers.image.created"}}' "$reg/e2e/child:e2e-two-x86_64")"

total=$((passed + failed))
[ "$total" -eq "$expected" ] || fail "ran $total checks, expected $expected"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
