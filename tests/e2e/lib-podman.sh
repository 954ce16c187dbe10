# shellcheck shell=bash
# A private podman storage root, sourced by the end-to-end scripts: `podman_store DIR [DRIVER]`
# writes DIR/storage.conf (DRIVER, default vfs; graph root DIR/root, run root DIR/run); a script
# points CONTAINERS_STORAGE_CONF at it, so that its podman never touches another run's images.
podman_store() {
  mkdir -p "$1/root" "$1/run"
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' "${2:-vfs}" "$1/root" "$1/run" \
    >"$1/storage.conf"
}
