#!/usr/bin/env bash
# A one-node Slurm on this machine for tests/slurm: installs Debian's slurm-wlm and munge
# when missing (root and apt-get needed), writes its own slurm.conf under SLURM_DIR (the
# system's /etc/slurm is left alone) and starts munged, slurmctld and slurmd.
#
#   tests/slurm/setup.sh            # then: export SLURM_CONF=$SLURM_DIR/slurm.conf
#
# Settings that work in a container: no cgroups (proctrack/linuxproc, task/none), no
# accounting, one node with CPUS CPUs. Safe to run again: a running Slurm is kept.
# Exit codes: 0 ready, 1 cannot install or start (the reason on stderr).
set -euo pipefail
SLURM_DIR="${SLURM_DIR:-/tmp/torch-scaffold-slurm}"
CPUS="${CPUS:-2}"
CONF="$SLURM_DIR/slurm.conf"
export SLURM_CONF="$CONF"

fail() { echo "slurm setup: $*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "slurm-wlm is not installed and installing it needs root"
    command -v apt-get >/dev/null || fail "slurm-wlm is not installed and there is no apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge \
        >"$SLURM_DIR.apt.log" 2>&1 \
        || { apt-get update -q >>"$SLURM_DIR.apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                slurm-wlm munge >>"$SLURM_DIR.apt.log" 2>&1; } \
        || fail "apt-get install slurm-wlm munge failed: see $SLURM_DIR.apt.log"
fi
[ "$(id -u)" = 0 ] || fail "starting slurmctld and slurmd here needs root"

mkdir -p "$SLURM_DIR"/{state,spool,log}
# munge: the key the package made, or a new one.
if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --force) \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- munged --force || fail "munged did not start"
fi
munge -n | unmunge >/dev/null || fail "munge does not work (munge -n | unmunge)"

HOST="$(hostname -s)"
cat >"$CONF.new" <<CONF
# Written by torch-scaffold's tests/slurm/setup.sh: one node, no cgroups, no accounting.
ClusterName=scaffoldtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

if cmp -s "$CONF.new" "$CONF" && timeout 10 scontrol ping >/dev/null 2>&1 \
    && timeout 10 sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'; then
    rm "$CONF.new"
    echo "slurm: already running (SLURM_CONF=$CONF)"
    exit 0
fi
mv "$CONF.new" "$CONF"
# Stop an earlier instance of ours (its pid files), then start afresh.
for pidfile in "$SLURM_DIR"/slurmd.pid "$SLURM_DIR"/slurmctld.pid; do
    if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
done
sleep 1
slurmctld -f "$CONF" || fail "slurmctld did not start: see $SLURM_DIR/log/slurmctld.log"
slurmd -f "$CONF" || fail "slurmd did not start: see $SLURM_DIR/log/slurmd.log"

for _ in $(seq 60); do
    if timeout 10 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "slurm: ready, node $HOST with $CPUS CPUs (SLURM_CONF=$CONF)"
        exit 0
    fi
    sleep 1
done
fail "the node did not become idle: $(sinfo -h -o '%T %E' 2>&1); see $SLURM_DIR/log/"
