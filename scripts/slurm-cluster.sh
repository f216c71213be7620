#!/usr/bin/env bash
# scripts/slurm-cluster.sh - a real multi-node Slurm cluster on this machine, for tests.
#
#   slurm-cluster.sh start   [--nodes N] [--dir DIR] [--port P] [--slurmd-timeout S]
#   slurm-cluster.sh stop    [--dir DIR]
#   slurm-cluster.sh status  [--dir DIR]
#   slurm-cluster.sh env     [--dir DIR]         print `export SLURM_CONF=...`
#   slurm-cluster.sh kill-node NODE [--slurmd-only] [--dir DIR]
#   slurm-cluster.sh restart-node NODE [--dir DIR]
#
# One munged, one slurmctld and N slurmd (default 3), each slurmd a distinct
# node (`slurmd -N nodeK`, its own spool, pid and log files through %n) of
# Debian 12's slurm-wlm 22.05. No systemd, no cgroup plugin
# (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none). Everything lives
# in DIR (default $CORRAL_SLURM_DIR or /tmp/corral-slurm): the config, the
# munge key and socket, state, spools, pid files and logs.
#
# Network: loopback only. slurmctld listens on 127.0.0.1:P (default 16817);
# node K has NodeAddr 127.0.1.K and its own port P+K (the slurmd share one
# network namespace). Every client needs SLURM_CONF=DIR/slurm.conf (`env`
# prints it): without it a client looks for a configless server in DNS.
#
# start is idempotent (starts only what is not running, then waits until the
# N nodes are idle); stop ends every job, then every daemon by the pids in
# its pid files (checked against /proc, never by name), then the step
# daemons and tasks of our nodes, and leaves no process behind; DIR stays
# (logs) and is reused. kill-node SIGKILLs a node's slurmd, its slurmstepds
# and their tasks (a node lost at once; the tasks' own children get 5 s to
# go, e.g. a corral watchdog cleaning up, then SIGKILL), or with
# --slurmd-only the slurmd alone (its steps run on, as on a real node).
# restart-node starts its slurmd again and waits until the node is back.
#
# Measured facts and traps: /work/shared/research/slurm-multinode.md.
set -uo pipefail

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "slurm-cluster: $*" >&2; exit 1; }

cmd=${1:-}
[ -n "$cmd" ] || { usage >&2; exit 2; }
shift
node_arg=
case $cmd in
kill-node | restart-node)
	node_arg=${1:-}
	[ -n "$node_arg" ] || die "$cmd needs a node name (node1, node2, ...)"
	shift
	;;
start | stop | status | env) ;;
-h | --help) usage; exit 0 ;;
*) echo "slurm-cluster: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac

nodes=3
dir=${CORRAL_SLURM_DIR:-/tmp/corral-slurm}
port=${CORRAL_SLURM_PORT:-16817}
slurmd_timeout=10
slurmd_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--nodes) nodes=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--slurmd-timeout) slurmd_timeout=$2; shift 2 ;;
	--slurmd-only) slurmd_only=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done
case $nodes in '' | *[!0-9]*) die "--nodes must be a number, got '$nodes'" ;; esac
[ "$nodes" -ge 1 ] && [ "$nodes" -le 200 ] || die "--nodes must be within 1..200, got $nodes"
case $port in '' | *[!0-9]*) die "--port must be a number, got '$port'" ;; esac
case $slurmd_timeout in '' | *[!0-9]*) die "--slurmd-timeout must be seconds, got '$slurmd_timeout'" ;; esac
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

# ---------------------------------------------------------------- processes

# Is pid alive (not a zombie: under a slow PID 1 dead daemons linger as Z)?
alive() {
	local s
	s=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

# The pid in pidfile if it is alive and is the daemon we started: its
# command line names this cluster's config or key (a recycled pid does not).
pid_of() { # PIDFILE COMM
	local f=$1 comm=$2 pid
	[ -f "$f" ] || return 1
	pid=$(tr -dc '0-9' <"$f")
	[ -n "$pid" ] && alive "$pid" || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
	echo "$pid"
}

# Wait until none of the pids is alive (bounded); 0 if they all went.
wait_gone() { # SECONDS PID...
	local until=$((SECONDS + $1)) p left
	shift
	while :; do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		[ $left -eq 0 ] && return 0
		[ $SECONDS -ge $until ] && return 1
		sleep 0.05
	done
}

stop_pid() { # PID: TERM, then KILL after 5 s
	local pid=$1
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_gone 5 "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
	wait_gone 5 "$pid"
}

# Every descendant of the given pids (from /proc/*/stat ppid), depth first.
descendants() { # PID...
	local all
	all=$(for s in /proc/[0-9]*/stat; do
		sed -n 's/^\([0-9]*\) (.*) [A-Za-z] \([0-9]*\) .*/\1 \2/p' "$s" 2>/dev/null
	done)
	awk -v roots="$*" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = split(roots, todo, " ")
			while (n > 0) {
				p = todo[n--]
				m = split(kids[p], k, " ")
				for (i = 1; i <= m; i++) { print k[i]; todo[++n] = k[i] }
			}
		}' <<<"$all"
}

# slurmstepd processes of our nodes (of one node when given): those holding a
# unix socket bound below our spool directory.
stepds() { # [NODE]
	local under=$dir/spool/${1:-} inodes p fd l
	inodes=$(awk -v d="$under" 'index($NF, d) == 1 { print $7 }' /proc/net/unix 2>/dev/null | sort -u)
	[ -n "$inodes" ] || return 0
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
		for fd in "$p"/fd/*; do
			l=$(readlink "$fd" 2>/dev/null) || continue
			case $l in socket:\[*\]) ;; *) continue ;; esac
			l=${l#socket:[}
			l=${l%]}
			if grep -qx "$l" <<<"$inodes"; then
				echo "${p#/proc/}"
				break
			fi
		done
	done
}

node_names() {
	local n
	n=$(cat "$dir/nodes" 2>/dev/null) || n=$nodes
	for ((k = 1; k <= n; k++)); do echo "node$k"; done
}

# ---------------------------------------------------------------- config

write_config() {
	local host k
	host=$(hostname -s 2>/dev/null || hostname)
	# slurmctld refuses to start unless its host name is SlurmctldHost.
	{
		echo "# written by scripts/slurm-cluster.sh: $nodes nodes on this machine, loopback only"
		echo "ClusterName=corral"
		echo "SlurmctldHost=$host(127.0.0.1)"
		echo "SlurmctldPort=$port"
		echo "SlurmdPort=$((port + 1))"
		echo "AuthType=auth/munge"
		echo "AuthInfo=socket=$dir/munge/munge.sock"
		echo "CredType=cred/munge"
		echo "SlurmUser=root"
		echo "SlurmdUser=root"
		echo "StateSaveLocation=$dir/state"
		echo "SlurmdSpoolDir=$dir/spool/%n"
		echo "SlurmctldPidFile=$dir/slurmctld.pid"
		echo "SlurmdPidFile=$dir/slurmd.%n.pid"
		echo "SlurmctldLogFile=$dir/slurmctld.log"
		echo "SlurmdLogFile=$dir/slurmd.%n.log"
		echo "SlurmctldDebug=info"
		echo "SlurmdDebug=info"
		echo "TmpFS=$dir/tmp"
		echo "ProctrackType=proctrack/linuxproc"
		echo "TaskPlugin=task/none"
		echo "SwitchType=switch/none"
		echo "MpiDefault=none"
		echo "SelectType=select/cons_tres"
		echo "SelectTypeParameters=CR_CPU"
		echo "SchedulerType=sched/builtin"
		echo "JobAcctGatherType=jobacct_gather/none"
		echo "AccountingStorageType=accounting_storage/none"
		echo "JobCompType=jobcomp/none"
		echo "ReturnToService=2"
		echo "SlurmdTimeout=$slurmd_timeout"
		echo "MessageTimeout=$slurmd_timeout"
		echo "InactiveLimit=0"
		echo "KillWait=5"
		echo "MinJobAge=10"
		for ((k = 1; k <= nodes; k++)); do
			echo "NodeName=node$k NodeAddr=127.0.1.$k NodeHostname=node$k Port=$((port + 10 + k)) CPUs=2 RealMemory=2048 State=UNKNOWN"
		done
		echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
	} >"$conf.tmp" && mv "$conf.tmp" "$conf"
	echo "$nodes" >"$dir/nodes"
}

# ---------------------------------------------------------------- daemons

start_munge() {
	pid_of "$dir/munged.pid" munged >/dev/null && return 0
	mkdir -p "$dir/munge"
	chmod 700 "$dir/munge"
	if [ ! -s "$dir/munge/munge.key" ]; then
		dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none || die "munge key"
	fi
	chmod 600 "$dir/munge/munge.key"
	rm -f "$dir/munge/munge.sock" "$dir/munge/munge.sock.lock"
	# --force: DIR may sit below a world-writable /tmp (sticky), which
	# munged's directory checks otherwise refuse. --origin: no DNS lookup.
	munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
		--pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
		--seed-file="$dir/munge/munged.seed" --origin=127.0.0.1 </dev/null ||
		die "munged did not start (see $dir/munged.log)"
	local until=$((SECONDS + 10))
	until [ -S "$dir/munge/munge.sock" ] && pid_of "$dir/munged.pid" munged >/dev/null; do
		[ $SECONDS -ge $until ] && die "munged did not come up (see $dir/munged.log)"
		sleep 0.05
	done
}

start_ctld() {
	pid_of "$dir/slurmctld.pid" slurmctld >/dev/null && return 0
	mkdir -p "$dir/state"
	# -c: a clean start, no jobs or node states from an earlier run.
	slurmctld -c -f "$conf" </dev/null >>"$dir/slurmctld.log" 2>&1 ||
		die "slurmctld did not start (see $dir/slurmctld.log)"
}

start_slurmd() { # NODE
	local n=$1
	pid_of "$dir/slurmd.$n.pid" slurmd >/dev/null && return 0
	mkdir -p "$dir/spool/$n" "$dir/tmp"
	slurmd -N "$n" -f "$conf" </dev/null >>"$dir/slurmd.$n.log" 2>&1 ||
		die "slurmd $n did not start (see $dir/slurmd.$n.log)"
}

# Wait until every node in the list is up (idle, mixed or allocated).
wait_nodes() { # SECONDS NODE...
	local until=$((SECONDS + $1)) want states
	shift
	want=$#
	while :; do
		states=$(sinfo -h -N -n "$(IFS=,; echo "$*")" -o '%N %T' 2>/dev/null)
		[ "$(grep -cE ' (idle|mixed|allocated|completing)$' <<<"$states")" -ge "$want" ] && return 0
		if [ $SECONDS -ge $until ]; then
			echo "slurm-cluster: nodes not up after the wait:" >&2
			echo "$states" | sed 's/^/  /' >&2
			return 1
		fi
		sleep 0.1
	done
}

cmd_start() {
	if [ -f "$dir/nodes" ] && [ "$(cat "$dir/nodes")" != "$nodes" ] &&
		pid_of "$dir/slurmctld.pid" slurmctld >/dev/null; then
		die "a cluster of $(cat "$dir/nodes") nodes runs in $dir: stop it first"
	fi
	command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
		die "slurm is not installed: scripts/install-deps.sh slurm"
	pid_of "$dir/slurmctld.pid" slurmctld >/dev/null || write_config
	start_munge
	start_ctld
	local list=() n
	for n in $(node_names); do
		start_slurmd "$n"
		list+=("$n")
	done
	wait_nodes 60 "${list[@]}" || die "the cluster did not come up (logs in $dir)"
	echo "slurm-cluster: ${#list[@]} nodes up; export SLURM_CONF=$conf"
}

cmd_stop() {
	local pids=() p n
	if pid_of "$dir/slurmctld.pid" slurmctld >/dev/null; then
		# End every job of this cluster first, so that no step outlives it.
		scancel --quiet --full --state=RUNNING 2>/dev/null
		scancel --quiet 2>/dev/null
		local until=$((SECONDS + 10))
		while [ -n "$(stepds)" ] && [ $SECONDS -lt $until ]; do sleep 0.1; done
	fi
	for n in $(node_names); do
		p=$(pid_of "$dir/slurmd.$n.pid" slurmd) && stop_pid "$p"
	done
	p=$(pid_of "$dir/slurmctld.pid" slurmctld) && stop_pid "$p"
	# Steps that outlived their slurmd (a killed node): with their tasks.
	for p in $(stepds); do pids+=("$p"); done
	if [ ${#pids[@]} -gt 0 ]; then
		local tree
		tree=$(descendants "${pids[@]}")
		kill -KILL "${pids[@]}" $tree 2>/dev/null
		wait_gone 5 "${pids[@]}" $tree
	fi
	p=$(pid_of "$dir/munged.pid" munged) && stop_pid "$p"
	rm -f "$dir/munge/munge.sock"
	echo "slurm-cluster: stopped"
}

cmd_status() {
	local ok=0 p n
	if p=$(pid_of "$dir/munged.pid" munged); then echo "munged     running (pid $p)"; else echo "munged     not running"; ok=1; fi
	if p=$(pid_of "$dir/slurmctld.pid" slurmctld); then echo "slurmctld  running (pid $p)"; else echo "slurmctld  not running"; ok=1; fi
	for n in $(node_names); do
		if p=$(pid_of "$dir/slurmd.$n.pid" slurmd); then echo "slurmd     $n running (pid $p)"; else echo "slurmd     $n not running"; ok=1; fi
	done
	if pid_of "$dir/slurmctld.pid" slurmctld >/dev/null; then
		sinfo -N -o '%N %T %C' 2>&1 | sed 's/^/  /'
		squeue -o '%i %j %T %N' 2>&1 | sed 's/^/  /'
	fi
	return $ok
}

cmd_kill_node() {
	local n=$node_arg p steps=() tasks tree
	grep -qx "$n" <<<"$(node_names)" || die "no node '$n' in this cluster ($(node_names | tr '\n' ' '))"
	p=$(pid_of "$dir/slurmd.$n.pid" slurmd) || die "slurmd $n is not running"
	if [ $slurmd_only -eq 1 ]; then
		kill -KILL "$p"
		wait_gone 5 "$p"
		echo "slurm-cluster: killed slurmd of $n (pid $p); its steps run on"
		return 0
	fi
	for s in $(stepds "$n"); do steps+=("$s"); done
	tasks=
	tree=
	if [ ${#steps[@]} -gt 0 ]; then
		tree=$(descendants "${steps[@]}")
		# The step tasks: the stepds' own children.
		tasks=$(for s in "${steps[@]}"; do
			for c in $tree; do
				[ "$(sed -n 's/^[0-9]* (.*) [A-Za-z] \([0-9]*\) .*/\1/p' "/proc/$c/stat" 2>/dev/null)" = "$s" ] && echo "$c"
			done
		done)
	fi
	# All at once, like a power cut: slurmd, its stepds, their tasks.
	kill -KILL "$p" "${steps[@]}" $tasks 2>/dev/null
	wait_gone 5 "$p" "${steps[@]}" $tasks
	# What the tasks started may clean up (a corral watchdog removes its
	# cgroups), within a bound.
	if [ -n "$tree" ] && ! wait_gone 5 $tree; then
		kill -KILL $tree 2>/dev/null
		wait_gone 5 $tree
	fi
	echo "slurm-cluster: killed node $n: slurmd $p, ${#steps[@]} slurmstepd, tasks: $(echo $tasks)"
}

cmd_restart_node() {
	local n=$node_arg
	grep -qx "$n" <<<"$(node_names)" || die "no node '$n' in this cluster"
	pid_of "$dir/slurmctld.pid" slurmctld >/dev/null || die "the cluster is not running"
	start_slurmd "$n"
	wait_nodes 60 "$n" || die "node $n did not come back (see $dir/slurmd.$n.log)"
	echo "slurm-cluster: $n is back"
}

case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export SLURM_CONF=$conf" ;;
kill-node) cmd_kill_node ;;
restart-node) cmd_restart_node ;;
esac
