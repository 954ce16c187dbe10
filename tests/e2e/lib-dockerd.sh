# shellcheck shell=bash
# A docker daemon of a test's own, sourced by tests/e2e/run.sh and tests/e2e/images.sh.
#
#   start_dockerd DIR LOG [DOCKERD-OPTION...]   sets dockerd_pid, DOCKER_HOST, DOCKER_CONFIG
#   stop_dockerd                                 stops the daemon start_dockerd started, by its pid
#
# Everything of the daemon is in DIR (keep it short: its unix sockets live below it, and a socket
# path has at most 107 bytes): data root, exec root (with its containerd), socket, pid file, a
# private client config, and its identity key (dockerd 20.10 writes it to /etc/docker/key.json
# unless told). No bridge, no iptables: the host's network is left alone; RUN steps get no
# network. Nothing is run unless the daemon answering on the socket is the one started (its data
# root is DIR's): start_dockerd returns 1 with the log's last lines otherwise.
dockerd_pid=
dockerd_dir=

start_dockerd() { # start_dockerd DIR LOG [DOCKERD-OPTION...]
  local dir=$1 log=$2
  shift 2
  mkdir -p "$dir" "$dir/config"
  printf '{"deprecated-key-path": "%s"}\n' "$dir/key.json" >"$dir/daemon.json"
  dockerd --config-file "$dir/daemon.json" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver=vfs --data-root "$dir/data" --exec-root "$dir/x" \
    --pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" "$@" >"$log" 2>&1 &
  dockerd_pid=$!
  dockerd_dir=$dir
  export DOCKER_HOST="unix://$dir/docker.sock" DOCKER_CONFIG="$dir/config"
  for _ in $(seq 150); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$(docker info --format '{{.DockerRootDir}}' 2>&1)" != "$dir/data" ]; then
    echo "the docker daemon did not start: $(tail -n 3 "$log")"
    return 1
  fi
}

# stop_dockerd: SIGTERM to the daemon start_dockerd started, by its pid; SIGKILL after 30 s, and
# then its containerd too (dockerd stops the containerd it started itself only when it exits
# cleanly).
stop_dockerd() {
  local containerd_pid
  [ -n "$dockerd_pid" ] || return 0
  containerd_pid=$(cat "$dockerd_dir/x/containerd/containerd.pid" 2>/dev/null)
  kill "$dockerd_pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -9 "$dockerd_pid" 2>/dev/null
    [ -z "$containerd_pid" ] || kill -9 "$containerd_pid" 2>/dev/null
  fi
  wait "$dockerd_pid" 2>/dev/null
  dockerd_pid=
}
