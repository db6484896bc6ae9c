#!/usr/bin/env bash
# A private single-node Slurm cluster for the tests.
#
#   scripts/slurm-cluster.sh install
#   scripts/slurm-cluster.sh up|down|status|env [BASE_DIR]
#
#   install install the Debian packages (slurmctld slurmd slurm-client munge) with
#           apt-get when they are missing; needs root. Starts nothing. This is
#           the only command that changes the system: `make slurm-install` and
#           CI (.ci/run) call it, the tests never do.
#   up      start munged, slurmctld and slurmd from what is installed (never
#           installs), wait for the node to be idle and a warm-up job to
#           complete. Idempotent. Prints `export SLURM_CONF=BASE_DIR/slurm.conf`
#           on stdout (progress goes to stderr), so
#           `eval "$(scripts/slurm-cluster.sh up)"`.
#   down    cancel all jobs, wait for an empty queue, stop the daemons by pid.
#           Idempotent.
#   status  exit 0 if the cluster answers `sinfo`, else 1.
#   env     print the export line only.
#
# Everything the cluster writes (munge key and socket, slurm.conf, gres.conf,
# state, spool, logs, pid files, fake GPU devices, jobcomp file) lives under
# BASE_DIR. BASE_DIR defaults to $MPRTUNE_SLURM_BASE, else to a folder in
# ${TMPDIR:-/tmp} named after this checkout. The two ports are picked free per
# start (below the kernel's ephemeral range) and written into BASE_DIR/slurm.conf,
# which is all the clients read: two checkouts can run two clusters at once.
#
# `up` needs root (daemons run as root, fake GPUs are made with mknod). Must run
# without systemd: every daemon is started by hand with a pid file and stopped
# by that pid, never by name.
#
# Tunables (env): MPRTUNE_SLURM_NODES  nodes (default 1). With N > 1 the nodes are
#                                      n1..nN, one slurmd each (`slurmd -N`), all on
#                                      this host with a port each, one fake GPU each
#                 MPRTUNE_SLURM_CPUS   CPUs to advertise (default: the real count,
#                                      or 4 via config_overrides when fewer than 2
#                                      cores could run two 1-CPU jobs at once)
#                 MPRTUNE_SLURM_TIMEOUT seconds to wait for each start-up phase (60)
#                 MPRTUNE_SLURM_SBIN   folders searched after PATH for the daemons
#                                      (default /usr/local/sbin:/usr/sbin:/sbin)
set -euo pipefail

export PATH="${PATH:-/usr/bin:/bin}:${MPRTUNE_SLURM_SBIN-/usr/local/sbin:/usr/sbin:/sbin}"

# What `up` runs; `install` provides them (Debian: slurmctld, slurmd, slurm-client, munge).
REQUIRED_BINARIES=(slurmctld slurmd sbatch srun squeue scancel sinfo scontrol munged munge unmunge)
DEBIAN_PACKAGES=(slurmctld slurmd slurm-client munge)

usage() {
    echo "usage: $0 install | $0 up|down|status|env [BASE_DIR]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
CMD=$1
CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BASE=${2:-${MPRTUNE_SLURM_BASE:-${TMPDIR:-/tmp}/mprtune-slurm-$(cksum <<<"$CHECKOUT" | cut -d' ' -f1)}}
[[ -n $BASE ]] || usage
case $BASE in
/*) ;;
*) BASE="$(pwd)/$BASE" ;;
esac
BASE=${BASE%/}

# Set by pick_ports (up) or read back from $CONF (nothing else needs them).
SLURMCTLD_PORT=
SLURMD_PORT=
PHASE_TIMEOUT=${MPRTUNE_SLURM_TIMEOUT:-60}
NODES=${MPRTUNE_SLURM_NODES:-1}
[[ $NODES =~ ^[1-9][0-9]?$ ]] || {
    echo "MPRTUNE_SLURM_NODES: expected 1..99, got '$NODES'" >&2
    exit 2
}

CONF=$BASE/slurm.conf
GRES_CONF=$BASE/gres.conf
JOBCOMP=$BASE/jobcomp.txt
MUNGE_DIR=$BASE/munge
MUNGE_KEY=$MUNGE_DIR/munge.key
MUNGE_SOCK_DIR=$MUNGE_DIR/run
MUNGE_SOCK=$MUNGE_SOCK_DIR/munge.socket
MUNGE_PID=$BASE/run/munged.pid
SLURMCTLD_PID=$BASE/run/slurmctld.pid
SLURMD_PID=$BASE/run/slurmd.pid
# Every daemon we start carries this in its environment: `down` uses it (and
# the working directory of slurmstepd) as a last resort to find leftovers of
# *this* cluster only.
MARKER="MPRTUNE_SLURM_DAEMON=$BASE"

log() { echo "slurm-cluster: [$(date +%T)] $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

env_line() { echo "export SLURM_CONF=$CONF"; }

# Run a Slurm client against this cluster, bounded in time.
sl() { SLURM_CONF=$CONF timeout 15 "$@"; }

# --- pid helpers --------------------------------------------------------------

# running PID: the process exists and is not a zombie (a killed daemon can stay
# <defunct> for a while when PID 1 is slow to reap it).
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z ]]
}

# pid_alive PIDFILE NAME: print the pid if the file names a running process
# whose command is NAME (guards against a stale file whose pid was reused).
pid_alive() {
    local file=$1 name=$2 pid comm
    [[ -f $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file" 2>/dev/null || true)
    [[ -n $pid ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $comm == "$name" ]] || return 1
    running "$pid" || return 1
    echo "$pid"
}

# stop_pids LABEL GRACE PID...: SIGTERM all, wait up to GRACE seconds, then
# SIGKILL and wait.
stop_pids() {
    local label=$1 grace=$2 i pid alive=()
    shift 2
    [[ $# -gt 0 ]] || return 0
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive=()
        for pid in "$@"; do
            running "$pid" && alive+=("$pid")
        done
        [[ ${#alive[@]} -eq 0 ]] && return 0
        sleep 0.1
    done
    log "$label (pid ${alive[*]}) ignored SIGTERM for ${grace}s, sending SIGKILL"
    kill -KILL "${alive[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        sleep 0.1
        for pid in "${alive[@]}"; do
            running "$pid" && continue 2
        done
        return 0
    done
    log "WARNING: $label (pid ${alive[*]}) still alive after SIGKILL"
}

# stop_daemons NAME...: stop the daemons named, by their pid files, together.
stop_daemons() {
    local name file pid pids=()
    for name in "$@"; do
        # $name-<node>.pid: one per slurmd of a multi-node cluster
        for file in "$BASE/run/$name.pid" "$BASE/run/$name"-*.pid; do
            if pid=$(pid_alive "$file" "$name"); then
                log "stopping $name (pid $pid)"
                pids+=("$pid")
            fi
        done
    done
    stop_pids "$*" 20 "${pids[@]}"
    for name in "$@"; do
        rm -f "$BASE/run/$name.pid" "$BASE/run/$name"-*.pid
    done
}

# Leftovers of *this* cluster after a crash (daemons whose pid file is lost or
# stale, slurmstepd of jobs that outlived slurmd): processes that carry our
# marker in their environment (the daemons we start), or Slurm processes whose
# working directory is in BASE (slurmd and its slurmstepd run in BASE/log;
# slurmstepd overwrites its environment with its process title).
leftover_pids() {
    local d pid cwd comm
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        running "$pid" || continue
        if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qxF "$MARKER"; then
            echo "$pid"
            continue
        fi
        cwd=$(readlink "$d/cwd" 2>/dev/null || true)
        comm=$(cat "$d/comm" 2>/dev/null || true)
        if [[ ($cwd == "$BASE" || $cwd == "$BASE"/*) && $comm == slurm* ]]; then
            echo "$pid"
        fi
    done
}

# descendants PID...: all running descendants of the given processes.
descendants() {
    local f stat pid ppid
    declare -A kids=()
    for f in /proc/[0-9]*/stat; do
        stat=$(cat "$f" 2>/dev/null) || continue
        pid=${f#/proc/}
        pid=${pid%/stat}
        stat=${stat##*) }
        ppid=$(cut -d' ' -f2 <<<"$stat")
        kids[$ppid]+=" $pid"
    done
    local queue=("$@") out=()
    while [[ ${#queue[@]} -gt 0 ]]; do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        for f in ${kids[$pid]:-}; do
            out+=("$f")
            queue+=("$f")
        done
    done
    [[ ${#out[@]} -eq 0 ]] || printf '%s\n' "${out[@]}"
}

stop_leftovers() {
    local pids kids pid
    mapfile -t pids < <(leftover_pids)
    [[ ${#pids[@]} -gt 0 ]] || return 0
    mapfile -t kids < <(descendants "${pids[@]}")
    for pid in "${pids[@]}"; do
        log "stopping leftover $(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
    done
    # Job processes first (their slurmstepd would otherwise leave them orphaned).
    [[ ${#kids[@]} -eq 0 ]] || stop_pids "leftover job processes" 5 "${kids[@]}"
    # slurmstepd ignores SIGTERM: do not wait long for it.
    stop_pids leftover 2 "${pids[@]}"
}

# --- status -------------------------------------------------------------------

responding() {
    [[ -f $CONF ]] || return 1
    # Without a live slurmctld the clients retry for ~10 s: fail fast instead.
    pid_alive "$SLURMCTLD_PID" slurmctld >/dev/null || return 1
    sl sinfo --noheader >/dev/null 2>&1
}

node_state() {
    sl sinfo --noheader --Node --format=%T 2>/dev/null | head -n1
}

slurmd_pid_files() {
    local i
    if ((NODES == 1)); then
        echo "$SLURMD_PID"
    else
        for ((i = 1; i <= NODES; i++)); do echo "$BASE/run/slurmd-n$i.pid"; done
    fi
}

healthy() {
    local file
    pid_alive "$MUNGE_PID" munged >/dev/null || return 1
    pid_alive "$SLURMCTLD_PID" slurmctld >/dev/null || return 1
    for file in $(slurmd_pid_files); do
        pid_alive "$file" slurmd >/dev/null || return 1
    done
    responding || return 1
    case $(node_state) in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
    esac
}

# --- down ---------------------------------------------------------------------

do_down() {
    local i ids
    if responding; then
        ids=$(sl squeue --noheader --format=%i 2>/dev/null | tr '\n' ' ' || true)
        if [[ -n ${ids// /} ]]; then
            log "cancelling jobs: $ids"
            # shellcheck disable=SC2086
            sl scancel $ids 2>/dev/null || true
        fi
        for ((i = 0; i < 60; i++)); do
            ids=$(sl squeue --noheader --format=%i 2>/dev/null || echo unknown)
            [[ -z $ids ]] && break
            sleep 0.5
        done
        [[ -z $ids ]] || log "WARNING: queue not empty after 30 s: ${ids//$'\n'/ }"
    fi
    stop_daemons slurmd slurmctld
    stop_daemons munged
    # Only a base that ran daemons (they log into BASE/log) can have leftovers; the /proc scan
    # takes seconds on a busy machine, so a fresh base skips it.
    if [[ -d $BASE/log ]]; then
        stop_leftovers
    fi
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
}

# --- up -----------------------------------------------------------------------

# missing_binaries: print the names of REQUIRED_BINARIES not on PATH.
missing_binaries() {
    local b
    for b in "${REQUIRED_BINARIES[@]}"; do
        command -v "$b" >/dev/null 2>&1 || echo "$b"
    done
}

do_install() {
    local missing
    missing=$(missing_binaries | tr '\n' ' ')
    if [[ -z ${missing// /} ]]; then
        log "Slurm and munge are installed ($(command -v slurmctld))"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "missing ${missing% }; installing needs root: sudo $0 install"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing% } and no apt-get: install Slurm and munge by hand"
    log "installing ${DEBIAN_PACKAGES[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${DEBIAN_PACKAGES[@]}" >&2 || die "apt-get install failed"
    missing=$(missing_binaries | tr '\n' ' ')
    [[ -z ${missing// /} ]] || die "still missing after apt-get install: ${missing% }"
    log "installed"
}

# --- ports --------------------------------------------------------------------

# Local TCP ports with any socket on them (listening or connected), IPv4 and 6.
ports_in_use() {
    local f sl local_addr rest
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        while read -r sl local_addr rest; do
            [[ $sl == sl ]] && continue
            echo $((16#${local_addr##*:}))
        done <"$f"
    done
}

port_free() {
    ! grep -qxF "$1" <<<"$USED_PORTS" && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_ports: set SLURMCTLD_PORT and SLURMD_PORT to two free neighbours in
# 20000-32767 (below Linux's default ephemeral range, so no outgoing connection
# takes them later). The first candidate comes from BASE's checksum: a cluster
# gets the same ports on every start when they are free, and two bases rarely
# start on the same candidate.
pick_ports() {
    local width=$((NODES + 1)) span start i j p
    span=$((12768 / width))
    USED_PORTS=$(ports_in_use | sort -u)
    start=$(($(cksum <<<"$BASE" | cut -d' ' -f1) % span))
    for ((i = 0; i < span; i++)); do
        p=$((20000 + width * ((start + i) % span)))
        for ((j = 0; j < width; j++)); do
            port_free $((p + j)) || continue 2
        done
        SLURMCTLD_PORT=$p
        SLURMD_PORT=$((p + 1)) # node k (1-based) of a multi-node cluster: SLURMD_PORT + k - 1
        return 0
    done
    die "no $width free neighbouring TCP ports in 20000-32767"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${secs}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

dump_logs() {
    local f
    for f in "$BASE"/log/munged.log "$BASE"/log/slurmctld.log "$BASE"/log/slurmd.log "$BASE"/log/slurmd-*.log; do
        [[ -f $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 25 "$f" >&2
    done
}

fail_up() {
    log "ERROR: $*"
    dump_logs
    do_down || true
    exit 1
}

munge_ok() { munge -S "$MUNGE_SOCK" -n </dev/null | unmunge -S "$MUNGE_SOCK"; }
ctld_ok() { sl scontrol ping | grep -q 'is UP'; }
node_idle() { [[ $(sl sinfo --noheader --Node --format=%T 2>/dev/null | sort -u) == idle ]]; }

# Compute the node line from `slurmd -C` (hardware) and the CPU policy.
node_line() {
    local host=$1 hw cpus real_mem mem want override=""
    hw=$(slurmd -C 2>/dev/null | head -n1) || true
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    real_mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    [[ -n $cpus ]] || cpus=$(nproc)
    [[ -n $real_mem ]] || real_mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    mem=$((real_mem * 9 / 10))
    ((mem >= 1)) || mem=1
    # We need at least two concurrent 1-CPU jobs. Each job takes >= 1 core
    # (CR_Core), and with hyper-threads a core is 2 CPUs; describing the node
    # as plain `CPUs=N` makes each CPU schedulable on its own.
    want=${MPRTUNE_SLURM_CPUS:-$cpus}
    if [[ -z ${MPRTUNE_SLURM_CPUS:-} ]] && ((cpus < 2)); then
        want=4
    fi
    if ((want != cpus)); then
        override="SlurmdParameters=config_overrides"
    fi
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$want RealMemory=$mem Gres=gpu:2 State=UNKNOWN"
    echo "$override"
}

# Several nodes on this one host (measured: ../shared/notes/slurm-multi-node.md): a port, a spool,
# pid and log file (%n) and a fake GPU per node; each advertises 2 CPUs whatever the host has.
multi_node_lines() {
    local host=$1 real_mem mem i
    real_mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    mem=$((real_mem * 9 / 10 / NODES))
    for ((i = 1; i <= NODES; i++)); do
        echo "NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((SLURMD_PORT + i - 1)) CPUs=${MPRTUNE_SLURM_CPUS:-2} RealMemory=$mem Gres=gpu:1 State=UNKNOWN"
    done
}

write_config() {
    local host=$1 lines node override i
    local spool=$BASE/spool pidfile=$SLURMD_PID logfile=$BASE/log/slurmd.log
    if ((NODES > 1)); then
        node=$(multi_node_lines "$host")
        override="SlurmdParameters=config_overrides"
        spool=$BASE/spool/%n pidfile=$BASE/run/slurmd-%n.pid logfile=$BASE/log/slurmd-%n.log
    else
        lines=$(node_line "$host")
        node=$(sed -n 1p <<<"$lines")
        override=$(sed -n 2p <<<"$lines")
    fi
    cat >"$CONF" <<EOF
# Generated by scripts/slurm-cluster.sh: private single-node test cluster.
ClusterName=mprtune
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$spool
SlurmctldPidFile=$SLURMCTLD_PID
SlurmdPidFile=$pidfile
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$logfile
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
$override
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if ((NODES > 1)); then
        {
            echo "# One fake GPU per node: character devices cloned from /dev/null."
            echo "AutoDetect=off"
            for ((i = 1; i <= NODES; i++)); do echo "NodeName=n$i Name=gpu File=$BASE/dev/gpu$((i - 1))"; done
        } >"$GRES_CONF"
        return 0
    fi
    cat >"$GRES_CONF" <<EOF
# Two fake GPUs: character devices cloned from /dev/null.
AutoDetect=off
NodeName=$host Name=gpu File=$BASE/dev/gpu0,$BASE/dev/gpu1
EOF
}

do_up() {
    if healthy; then
        log "already up ($BASE)"
        env_line
        return 0
    fi
    local missing
    missing=$(missing_binaries | tr '\n' ' ')
    [[ -z ${missing// /} ]] ||
        die "Slurm is not installed (missing ${missing% }): run \`$0 install\` (or \`make slurm-install\`) as root first"
    [[ $(id -u) == 0 ]] || die "must run as root (daemons run as root, fake GPUs need mknod)"
    # A Unix socket path has at most 107 bytes (sun_path); munged only says so in its own log.
    ((${#MUNGE_SOCK} <= 107)) || die "BASE_DIR too long: $MUNGE_SOCK exceeds the 107-byte socket path limit"
    local t0=$SECONDS host
    host=$(hostname -s)
    [[ -n $host ]] || die "empty hostname"

    # Whatever is left of an earlier (crashed or half-started) run goes first.
    do_down

    pick_ports
    log "starting cluster in $BASE (node $host, ports $SLURMCTLD_PORT/$SLURMD_PORT)"
    mkdir -p "$BASE"
    chmod 755 "$BASE"
    rm -rf "$BASE/state" "$BASE/spool" "$BASE/run"
    mkdir -p "$BASE/state" "$BASE/spool" "$BASE/log" "$BASE/run" "$BASE/dev" "$MUNGE_SOCK_DIR"
    chmod 755 "$BASE/run" "$MUNGE_DIR" "$MUNGE_SOCK_DIR"
    : >"$JOBCOMP"
    local i node
    for ((i = 1; i <= NODES; i++)); do mkdir -p "$BASE/spool/n$i"; done
    for ((i = 0; i < (NODES > 2 ? NODES : 2); i++)); do
        if [[ ! -c $BASE/dev/gpu$i ]]; then
            rm -f "$BASE/dev/gpu$i"
            mknod "$BASE/dev/gpu$i" c 1 3
        fi
        chmod 666 "$BASE/dev/gpu$i"
    done
    if [[ ! -s $MUNGE_KEY ]]; then
        rm -f "$MUNGE_KEY"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chmod 400 "$MUNGE_KEY"
    write_config "$host"

    log "starting munged"
    env "$MARKER" munged --force \
        --key-file="$MUNGE_KEY" --socket="$MUNGE_SOCK" --pid-file="$MUNGE_PID" \
        --log-file="$BASE/log/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        </dev/null >>"$BASE/log/munged.log" 2>&1 9>&- || fail_up "munged failed to start"
    wait_for "$PHASE_TIMEOUT" "munged" munge_ok || fail_up "munge does not answer"

    log "starting slurmctld"
    env "$MARKER" SLURM_CONF="$CONF" slurmctld -c -f "$CONF" \
        </dev/null >>"$BASE/log/slurmctld.log" 2>&1 9>&- || fail_up "slurmctld failed to start"
    wait_for "$PHASE_TIMEOUT" "slurmctld" ctld_ok || fail_up "slurmctld does not answer"

    local names=$host
    ((NODES == 1)) || names=$(for ((i = 1; i <= NODES; i++)); do echo "n$i"; done)
    for node in $names; do
        log "starting slurmd $node"
        env "$MARKER" SLURM_CONF="$CONF" slurmd -f "$CONF" -N "$node" \
            </dev/null >>"$BASE/log/slurmd.log" 2>&1 9>&- || fail_up "slurmd $node failed to start"
    done
    wait_for "$PHASE_TIMEOUT" "nodes $(echo $names) to be idle" node_idle ||
        fail_up "node not idle (state: $(node_state || true); $(sl sinfo --noheader --Node --format='%T %E' 2>&1 || true))"

    # The first scheduling pass comes a few seconds after slurmctld starts: a
    # warm-up job makes sure the cluster really runs jobs before we return.
    log "warm-up job"
    local job state deadline
    job=$(sl sbatch --parsable --job-name=warmup --chdir="$BASE" --output=/dev/null \
        --error=/dev/null --wrap true) || fail_up "warm-up sbatch failed"
    job=${job%%;*}
    deadline=$((SECONDS + PHASE_TIMEOUT))
    while :; do
        state=$(sl squeue --noheader --states=all --format=%T --jobs="$job" 2>/dev/null || true)
        case $state in
        COMPLETED) break ;;
        FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
            fail_up "warm-up job $job ended $state"
            ;;
        esac
        ((SECONDS < deadline)) || fail_up "warm-up job $job not completed after ${PHASE_TIMEOUT}s (state: ${state:-?})"
        sleep 0.2
    done
    log "up in $((SECONDS - t0))s (node: $(node_state))"
    env_line
}

do_status() {
    if responding; then
        sl sinfo --noheader --Node --format='%N %T %c CPUs %G' >&2 || true
        return 0
    fi
    log "not responding ($CONF)"
    return 1
}

with_lock() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock -w 180 9 || die "could not lock $BASE/.lock"
    "$@"
}

case $CMD in
install)
    [[ $# -eq 1 ]] || usage
    do_install
    ;;
up) with_lock do_up ;;
down)
    if [[ -d $BASE ]]; then
        with_lock do_down
    else
        do_down
    fi
    ;;
status) do_status ;;
env) env_line ;;
*) usage ;;
esac
