#!/usr/bin/env bash
# Make a Docker engine available for kbox's Docker runtime and its e2e tests, idempotently.
#
# kbox drives the local Docker daemon (see DESIGN.md, "Networking model"); its e2e tests build their
# images FROM scratch out of Debian's static busybox and catatonit, because there is no registry here.
#
#   1. Docker answers `docker info`          -> say so, make sure the static test binaries exist, done.
#   2. else, as root with apt-get (CI, dev VM) -> install what is missing (docker.io busybox-static
#      catatonit iproute2), start dockerd in the background (it outlives this script), wait until it
#      answers; on failure print the log tail and exit non-zero.
#   3. else                                    -> explain how to start Docker and exit 1.
#
# Safe to run twice: the second run sees Docker up and returns at once.
#
# Environment:
#   KBOX_DOCKERD_LOG     dockerd's log file          (default /var/log/kbox-dockerd.log)
#   KBOX_DOCKERD_FLAGS   extra flags for dockerd     (default none)
#   KBOX_DOCKERD_WAIT    seconds to wait per attempt (default 60)
set -euo pipefail

LOG=${KBOX_DOCKERD_LOG:-/var/log/kbox-dockerd.log}
WAIT=${KBOX_DOCKERD_WAIT:-60}
# shellcheck disable=SC2206  # word splitting of the user's extra flags is intended
EXTRA_FLAGS=(${KBOX_DOCKERD_FLAGS:-})
BUSYBOX=/usr/bin/busybox
CATATONIT=/usr/bin/catatonit
START=$SECONDS

say() { printf 'ensure-docker: %s\n' "$*"; }
warn() { printf 'ensure-docker: %s\n' "$*" >&2; }

docker_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
is_root() { [[ $(id -u) -eq 0 ]]; }
have_apt() { command -v apt-get >/dev/null 2>&1; }

# True when $1 exists and is statically linked. `ldd` (libc-bin, always present, unlike `file`) says
# "not a dynamic executable" (or "statically linked" for static-pie) and exits 1 for such binaries;
# its status is deliberately ignored, since with pipefail `ldd | grep -q` would fail on a match.
is_static() {
    [[ -x $1 ]] || return 1
    local out
    out=$(ldd "$1" 2>&1 || true)
    [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]
}

apt_updated=0
apt_install() {
    (($#)) || return 0
    say "installing: $*"
    local out
    out=$(mktemp)
    # Quiet on success (apt's debconf/needrestart chatter goes to $out), the whole output on failure.
    if { ((apt_updated)) || apt-get update -qq; } >"$out" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get install -y -qq --no-install-recommends "$@" >>"$out" 2>&1; then
        apt_updated=1
        rm -f "$out"
        return 0
    fi
    cat "$out" >&2
    rm -f "$out"
    warn "apt-get install $* failed"
    return 1
}

# Debian packages that are missing, judged by the file each one is needed for (so a docker-ce install
# or a hand-built dockerd counts as present and is never fought with).
missing_packages() {
    local -a missing=()
    command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || missing+=(docker.io)
    is_static "$BUSYBOX" || missing+=(busybox-static)
    is_static "$CATATONIT" || missing+=(catatonit)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    printf '%s\n' "${missing[@]}"
}

# The test images need statically linked busybox (and catatonit for the pod sandbox image).
ensure_test_binaries() {
    local -a missing=()
    is_static "$BUSYBOX" || missing+=(busybox-static)
    is_static "$CATATONIT" || missing+=(catatonit)
    ((${#missing[@]})) || return 0
    if is_root && have_apt; then
        apt_install "${missing[@]}"
    else
        warn "missing static test binaries (${missing[*]}): install them with apt-get as root;" \
            "the e2e test images are built from $BUSYBOX and $CATATONIT"
    fi
}

ready() {
    say "Docker is up: server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')," \
        "storage driver $(docker info --format '{{.Driver}}' 2>/dev/null || echo '?')" \
        "(${1:-already running}, $((SECONDS - START)) s)"
}

# --- Docker already answers --------------------------------------------------------------------------------
if docker_up; then
    ensure_test_binaries
    ready
    exit 0
fi

# --- cannot start it: say how ------------------------------------------------------------------------------
if ! is_root || { ! have_apt && ! command -v dockerd >/dev/null 2>&1; }; then
    warn "Docker is not reachable (\`docker info\` fails) and this script can only start it as root"
    warn "on a Debian-like machine with apt-get. Start a Docker engine yourself, for example:"
    warn "    sudo apt-get install docker.io busybox-static catatonit && sudo systemctl start docker"
    warn "  or (no systemd):  sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'"
    warn "and make sure your user can use it (\`docker info\` works; e.g. add it to the docker group),"
    warn "or point DOCKER_HOST at a running engine. Then run scripts/ensure-docker.sh again."
    exit 1
fi

# --- root with apt: install and start ------------------------------------------------------------------------------
mapfile -t missing < <(missing_packages | sed '/^$/d')
if ((${#missing[@]})); then
    if have_apt; then
        apt_install "${missing[@]}"
    else
        warn "missing packages (${missing[*]}) and no apt-get to install them"
    fi
fi

# PIDs of running dockerd processes (procps may be missing on a minimal machine: then none).
running_dockerd() { command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd; }

# Wait until `docker info` answers, dockerd ($1, optional) dies, or $2 seconds pass.
wait_for_docker() {
    local pid=${1:-} deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        docker_up && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.25
    done
    docker_up
}

# Someone (systemd, a concurrent run of this script) is already starting a dockerd: wait for it.
if running=$(running_dockerd); then
    say "a dockerd is already running (pid ${running//$'\n'/ }); waiting for it"
    if wait_for_docker "" "$WAIT"; then
        ensure_test_binaries
        ready "started by someone else"
        exit 0
    fi
    warn "the running dockerd does not answer after ${WAIT} s; see its log (${LOG} if started by this script)"
    exit 1
fi

# A systemd machine starts Docker as a service (Debian's docker.io ships docker.service).
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1 &&
    systemctl list-unit-files docker.service >/dev/null 2>&1; then
    say "starting docker.service"
    if systemctl start docker.service && wait_for_docker "" "$WAIT"; then
        ensure_test_binaries
        ready "started docker.service"
        exit 0
    fi
    warn "docker.service did not come up; trying dockerd directly"
    systemctl stop docker.service docker.socket >/dev/null 2>&1 || true
fi

# Flags per attempt. On this project's machines (Debian 12 VM, ext4 root, cgroup v1, iptables-nft)
# plain `dockerd` works: overlay2, the default bridge and its iptables rules all come up, so the
# first attempt passes no flag at all (checked: containers run, join each other's network namespace,
# and the host reaches them on a user-defined bridge). overlay2 cannot work where /var/lib/docker
# sits on an overlay filesystem or the kernel lacks overlayfs (Docker in a container, some sandboxes);
# if the daemon then fails to come up, the second attempt uses vfs (plain copies: slower, works
# anywhere). Anything else (e.g. --iptables=false where the kernel has no netfilter) is for the
# caller to add through KBOX_DOCKERD_FLAGS.
attempts=("" "--storage-driver=vfs")

mkdir -p "$(dirname "$LOG")"
for flags in "${attempts[@]}"; do
    # shellcheck disable=SC2206  # flags is a space-separated list on purpose
    args=(${flags} "${EXTRA_FLAGS[@]}")
    cmdline="dockerd${args[*]:+ ${args[*]}}"
    printf '\n===== %s: %s =====\n' "$(date -Is)" "$cmdline" >>"$LOG"
    say "starting: $cmdline (log: $LOG)"
    # setsid + nohup: its own session, no controlling terminal, immune to SIGHUP, so the daemon
    # outlives this script and the shell (or CI step) that ran it. cd /: do not pin the caller's
    # directory. exec all the way down, so $! is dockerd's own PID.
    (cd / && exec setsid nohup dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null) &
    pid=$!
    if wait_for_docker "$pid" "$WAIT"; then
        ensure_test_binaries
        ready "started dockerd, pid $pid"
        exit 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        warn "$cmdline did not answer within ${WAIT} s; last lines of $LOG:"
    else
        status=0
        wait "$pid" 2>/dev/null || status=$?
        warn "$cmdline exited (status $status) before answering; last lines of $LOG:"
    fi
    tail -n 25 "$LOG" >&2 || true
    # Stop this attempt (and the containerd it manages) before the next one.
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
done

warn "could not start a Docker engine; full log in $LOG"
exit 1
