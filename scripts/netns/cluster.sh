#!/usr/bin/env bash
# Emulates a cluster of several machines on this one: each "host" is a network namespace (halo-h0 … halo-hN-1)
# with one interface into a bridge (halo-br0) in the root namespace, optionally rate-limited with tbf, and
# mpirun runs ranks inside those namespaces through scripts/netns/rsh-agent. See docs/multi-host.md.
#
#   cluster.sh up N [--rate RATE] [--burst BYTES] [--latency TIME] [--replace]
#   cluster.sh down
#   cluster.sh status
#   cluster.sh hostfile                 print the hostfile's path
#   cluster.sh exec H CMD…              run CMD on host H (0, h0, halo-h0 or 10.77.0.1)
#   cluster.sh measure H1 H2 [--seconds S] [--reverse]
#                                       TCP throughput H1 -> H2 (iperf3; python3 if iperf3 is unavailable)
#   cluster.sh mpirun MPIRUN-ARGS…      mpirun with ranks inside the hosts, all traffic over the bridge
#
# Needs root, iproute2 (ip, tc, bridge support in the kernel) and util-linux (unshare).
# Addresses: hosts 10.77.0.1 … 10.77.0.N on 10.77.0.0/24; the bridge (the root namespace, where mpirun runs) is
# 10.77.0.254. The namespaces have no route anywhere else. Everything created is named halo-*; `down` removes it.
# State (hostfile, host map, settings) lives in $HALO_NETNS_STATE (default /run/halo-netns).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${HALO_NETNS_STATE:-/run/halo-netns}"
export HALO_NETNS_STATE="$state"

bridge=halo-br0
subnet_prefix=10.77.0
subnet="$subnet_prefix.0/24"
bridge_ip="$subnet_prefix.254"
max_hosts=64

log() { echo "cluster.sh: $*" >&2; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

need_root() { [ "$(id -u)" = 0 ] || die "needs root (network namespaces, bridges and qdiscs)"; }

ns_name() { echo "halo-h$1"; }          # index -> namespace
host_ip() { echo "$subnet_prefix.$(($1 + 1))"; }
br_veth() { echo "halo-v$1"; }          # bridge-side end of host i's link (root namespace)
ns_veth=eth0                            # host-side end, inside the namespace (names are per namespace)

# Host index from 3, h3, halo-h3 or 10.77.0.4.
host_index() {
    local h="$1" i
    case "$h" in
        "$subnet_prefix".*) i=$(( ${h##*.} - 1 )) ;;
        halo-h*) i="${h#halo-h}" ;;
        h*) i="${h#h}" ;;
        *) i="$h" ;;
    esac
    [[ "$i" =~ ^[0-9]+$ ]] || die "not a host: '$h' (use an index, hI, halo-hI or $subnet_prefix.I)"
    [ -e "/run/netns/$(ns_name "$i")" ] || die "host '$h' ($(ns_name "$i")) does not exist; is the cluster up?"
    echo "$i"
}

# Our namespaces that exist now (by name), from the state file and from the naming convention.
our_namespaces() {
    { [ -r "$state/hosts.map" ] && awk '{ print $2 }' "$state/hosts.map"
      ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^halo-h[0-9]+$'
    } | sort -u
}

# Bytes per second of a tc rate (tc's units: bit kbit mbit gbit tbit, bps kbps mbps gbps = bytes; k/m/g = 1000s).
rate_bytes_per_second() {
    awk -v r="$1" 'BEGIN {
        r = tolower(r)
        if (!match(r, /^[0-9]+(\.[0-9]+)?/)) { exit 1 }
        n = substr(r, 1, RLENGTH); u = substr(r, RLENGTH + 1)
        m["bit"] = 1/8; m["kbit"] = 1e3/8; m["mbit"] = 1e6/8; m["gbit"] = 1e9/8; m["tbit"] = 1e12/8
        m["bps"] = 1; m["kbps"] = 1e3; m["mbps"] = 1e6; m["gbps"] = 1e9; m["tbps"] = 1e12
        m["kibit"] = 1024/8; m["mibit"] = 1048576/8; m["gibit"] = 1073741824/8
        m["kibps"] = 1024; m["mibps"] = 1048576; m["gibps"] = 1073741824
        if (!(u in m)) { exit 1 }
        printf "%.0f\n", n * m[u]
    }'
}

# ---------------------------------------------------------------------------------------------------- down

cmd_down() {
    need_root
    local ns pid any=0
    for ns in $(our_namespaces); do
        any=1
        # Processes still running in the namespace (servers, stray ranks) would keep it, and its link, alive
        # after its name is gone; they can only be ours: nothing else runs in these namespaces.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        sleep 0.2
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true     # deleting the namespace deletes its veth and so the peer
    done
    local link
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | sed 's/@.*//' | grep -E '^halo-v[0-9]+$' || true); do
        any=1; ip link del "$link" 2>/dev/null || true
    done
    if ip link show "$bridge" >/dev/null 2>&1; then any=1; ip link del "$bridge"; fi
    if [ -d "$state" ]; then any=1; rm -rf "$state"; fi
    if [ "$any" = 1 ]; then log "down: removed namespaces, links, $bridge and $state"; else log "down: nothing to remove"; fi
}

# ------------------------------------------------------------------------------------------------------ up

shape_link() {   # shape_link NETNS-OR-EMPTY DEV RATE BURST LATENCY
    local netns="$1" dev="$2" rate="$3" burst="$4" latency="$5"
    local -a tc=(tc)
    [ -n "$netns" ] && tc=(ip netns exec "$netns" tc)
    "${tc[@]}" qdisc replace dev "$dev" root tbf rate "$rate" burst "$burst" latency "$latency"
}

reachable() {   # reachable NETNS IP: a TCP connect from NETNS to IP port 9 succeeds or is refused
    local out rc=0
    out="$(ip netns exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1)" || rc=$?
    [ "$rc" = 0 ] || [[ "$out" == *refused* ]]
}

cmd_up() {
    need_root
    local n="" rate="" burst="" latency=20ms replace=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --rate) rate="${2:?--rate needs a value, e.g. 100mbit}"; shift 2 ;;
            --rate=*) rate="${1#*=}"; shift ;;
            --burst) burst="${2:?--burst needs a value in bytes}"; shift 2 ;;
            --burst=*) burst="${1#*=}"; shift ;;
            --latency) latency="${2:?--latency needs a value, e.g. 20ms}"; shift 2 ;;
            --latency=*) latency="${1#*=}"; shift ;;
            --replace) replace=1; shift ;;
            -h|--help) usage; exit 0 ;;
            -*) die "up: unknown option $1" ;;
            *) [ -z "$n" ] || die "up: one host count, got '$n' and '$1'"; n="$1"; shift ;;
        esac
    done
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$max_hosts" ] || die "up: N must be 1 … $max_hosts, got '${n}'"
    command -v unshare >/dev/null || die "unshare (util-linux) is missing"

    if [ -n "$rate" ]; then
        local bps
        bps="$(rate_bytes_per_second "$rate")" || die "up: cannot read rate '$rate' (e.g. 100mbit, 1gbit, 50mbps)"
        # tbf needs a bucket of at least one (GSO) packet and of at least rate/HZ; 10 ms of traffic, >= 64 KiB.
        if [ -z "$burst" ]; then burst=$(( bps / 100 )); [ "$burst" -ge 65536 ] || burst=65536; fi
    elif [ -n "$burst" ]; then
        die "up: --burst needs --rate"
    fi

    if [ -n "$(our_namespaces)" ] || ip link show "$bridge" >/dev/null 2>&1 || [ -d "$state" ]; then
        if [ "$replace" = 1 ]; then cmd_down; else
            die "up: a cluster (or its remains) exists already: run \`$0 down\` first, or pass --replace"
        fi
    fi

    # From here on, any failure (or an interrupt) removes whatever was created.
    local done_ok=0
    trap 'if [ "$done_ok" = 0 ]; then log "up failed; cleaning up"; cmd_down || true; fi' EXIT
    trap 'exit 130' INT TERM

    mkdir -p "$state"
    : > "$state/hosts.map"

    ip link add "$bridge" type bridge
    echo 1 > "/proc/sys/net/ipv6/conf/$bridge/disable_ipv6" 2>/dev/null || true
    ip addr add "$bridge_ip/24" dev "$bridge"
    ip link set "$bridge" up

    local i ns ip veth
    for ((i = 0; i < n; i++)); do
        ns="$(ns_name "$i")"; ip="$(host_ip "$i")"; veth="$(br_veth "$i")"
        ip netns add "$ns"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
        ip -n "$ns" link set lo up
        # Create both ends inside the namespace, then move the bridge end out: the root namespace never has an
        # interface named like the host end.
        ip -n "$ns" link add "$ns_veth" type veth peer name "$veth"
        ip -n "$ns" link set "$veth" netns $$   # into the namespace this script runs in
        echo 1 > "/proc/sys/net/ipv6/conf/$veth/disable_ipv6" 2>/dev/null || true
        ip link set "$veth" master "$bridge"
        ip link set "$veth" up
        ip -n "$ns" addr add "$ip/24" dev "$ns_veth"
        ip -n "$ns" link set "$ns_veth" up
        if [ -n "$rate" ]; then
            shape_link "$ns" "$ns_veth" "$rate" "$burst" "$latency"   # host -> network
            shape_link "" "$veth" "$rate" "$burst" "$latency"         # network -> host
        fi
        echo "$ip $ns" >> "$state/hosts.map"
    done

    : > "$state/hostfile"
    for ((i = 0; i < n; i++)); do echo "$(host_ip "$i") slots=1" >> "$state/hostfile"; done
    cat > "$state/settings" <<EOF
hosts=$n
rate=${rate:-none}
burst=${burst:-none}
latency=$latency
EOF

    # Every host must reach the bridge (where mpirun listens) before anyone uses the cluster. No ping here: a
    # TCP connection to a closed port of the bridge address is refused at once if the path works.
    for ((i = 0; i < n; i++)); do
        reachable "$(ns_name "$i")" "$bridge_ip" || die "up: $(ns_name "$i") cannot reach the bridge $bridge_ip"
    done

    done_ok=1
    trap - EXIT INT TERM
    log "up: $n host(s) on $subnet via $bridge ($bridge_ip)${rate:+, each link capped at $rate each way (tbf burst ${burst} B, latency $latency)}"
    echo "$state/hostfile"
}

# ---------------------------------------------------------------------------------------------------- status

cmd_status() {
    if [ ! -r "$state/hosts.map" ]; then echo "no cluster ($state/hosts.map missing)"; return 0; fi
    cat "$state/settings"
    echo "hostfile: $state/hostfile"
    local ip ns
    while read -r ip ns; do
        printf '%s  %s  %s\n' "$ns" "$ip" "$(ip -n "$ns" -br addr show dev "$ns_veth" 2>/dev/null | awk '{ print $2, $3 }' || true)"
        printf '    out: %s\n' "$(ip netns exec "$ns" tc qdisc show dev "$ns_veth" 2>/dev/null | head -n 1 || true)"
        printf '    in:  %s\n' "$(tc qdisc show dev "$(br_veth "${ns#halo-h}")" 2>/dev/null | head -n 1 || true)"
    done < "$state/hosts.map"
}

# ------------------------------------------------------------------------------------------------------ exec

in_host() {   # in_host INDEX CMD…: run CMD in the host's network namespace, with the host's name as hostname
    local ns; ns="$(ns_name "$1")"; shift
    ip netns exec "$ns" unshare --uts -- sh -c 'hostname "$1"; shift; exec "$@"' sh "$ns" "$@"
}

cmd_exec() {
    need_root
    [ $# -ge 2 ] || die "usage: $0 exec H CMD…"
    local i; i="$(host_index "$1")"; shift
    in_host "$i" "$@"
}

# --------------------------------------------------------------------------------------------------- measure

ensure_iperf3() {
    command -v iperf3 >/dev/null && return 0
    command -v apt-get >/dev/null || return 1
    log "installing iperf3 with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3 >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3 >/dev/null 2>&1; } \
        || return 1
    command -v iperf3 >/dev/null
}

# A python3 sender/receiver: the receiver counts bytes for the sender's duration and prints Mbit/s.
py_measure='
import socket, sys, time
mode, addr, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
port = 5299
if mode == "recv":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); print("ready", flush=True)
    c, _ = s.accept(); total = 0; start = None
    while True:
        b = c.recv(1 << 20)
        if not b: break
        if start is None: start = time.monotonic()
        total += len(b)
    elapsed = time.monotonic() - start
    print("%.1f" % (total * 8 / elapsed / 1e6))
else:
    c = socket.create_connection((addr, port)); buf = b"\0" * (1 << 20); end = time.monotonic() + seconds
    while time.monotonic() < end: c.sendall(buf)
    c.close()
'

cmd_measure() {
    need_root
    local a="" b="" seconds=5 reverse=0 tool=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --seconds) seconds="${2:?}"; shift 2 ;;
            --reverse) reverse=1; shift ;;
            --tool) tool="${2:?}"; shift 2 ;;
            -*) die "measure: unknown option $1" ;;
            *) if [ -z "$a" ]; then a="$1"; elif [ -z "$b" ]; then b="$1"; else die "measure: two hosts"; fi; shift ;;
        esac
    done
    [ -n "$a" ] && [ -n "$b" ] || die "usage: $0 measure H1 H2 [--seconds S] [--reverse] [--tool iperf3|python3]"
    local ia ib; ia="$(host_index "$a")"; ib="$(host_index "$b")"
    [ "$ia" != "$ib" ] || die "measure: two different hosts"
    local from="$ia" to="$ib"
    [ "$reverse" = 1 ] && { from="$ib"; to="$ia"; }
    local server_ip; server_ip="$(host_ip "$to")"
    if [ -z "$tool" ]; then if ensure_iperf3; then tool=iperf3; else tool=python3; log "iperf3 unavailable; using python3"; fi; fi

    tmp="$(mktemp -d)"; server_pid=""    # globals: the EXIT trap needs them
    trap 'if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
    local mbits
    case "$tool" in
        iperf3)
            in_host "$to" iperf3 -s -1 -B "$server_ip" -p 5201 > "$tmp/server" 2>&1 &
            server_pid=$!
            local tries=0
            until in_host "$from" iperf3 -c "$server_ip" -p 5201 -t "$seconds" -f m > "$tmp/client" 2>&1; do
                tries=$((tries + 1)); [ "$tries" -lt 20 ] || { cat "$tmp/client" >&2; die "measure: iperf3 failed"; }
                sleep 0.2
            done
            wait "$server_pid" 2>/dev/null || true; server_pid=""
            mbits="$(awk '/receiver/ { for (k = 1; k <= NF; k++) if ($k == "Mbits/sec") v = $(k-1) } END { print v }' "$tmp/client")"
            ;;
        python3)
            in_host "$to" python3 -c "$py_measure" recv "$server_ip" "$seconds" > "$tmp/server" 2>&1 &
            server_pid=$!
            local tries=0
            until grep -q ready "$tmp/server" 2>/dev/null; do
                tries=$((tries + 1)); [ "$tries" -lt 50 ] || die "measure: receiver did not start"; sleep 0.1
            done
            in_host "$from" python3 -c "$py_measure" send "$server_ip" "$seconds"
            wait "$server_pid" || true; server_pid=""
            mbits="$(tail -n 1 "$tmp/server")"
            ;;
        *) die "measure: --tool iperf3 or python3" ;;
    esac
    [ -n "$mbits" ] || die "measure: no result"
    echo "$(ns_name "$from") ($(host_ip "$from")) -> $(ns_name "$to") ($server_ip): $mbits Mbit/s ($tool, ${seconds} s, TCP)"
}

# ---------------------------------------------------------------------------------------------------- mpirun

cmd_mpirun() {
    [ -r "$state/hostfile" ] || die "mpirun: no cluster is up ($state/hostfile missing): $0 up N"
    command -v mpirun >/dev/null || die "mpirun is not on PATH (apt-get install openmpi-bin)"
    # Defaults; an option or MCA parameter given on the command line replaces the default of the same name.
    # The launcher (plm rsh) reaches the hosts through the agent; the daemons' out-of-band channel and the MPI
    # traffic (ob1 over the tcp btl, not UCX) both stay on the emulated subnet.
    local -A mca=(
        [plm_rsh_agent]="$here/rsh-agent"
        [oob_tcp_if_include]="$subnet"
        [pml]=ob1
        [btl]=self,tcp
        [btl_tcp_if_include]="$subnet"
    )
    local -a args=("$@") extra=()
    local k has_hostfile=0 has_bind=0
    for ((k = 0; k < ${#args[@]}; k++)); do
        case "${args[k]}" in
            --hostfile|-hostfile|--machinefile|-machinefile|--host|-host|-H|--hostfile=*) has_hostfile=1 ;;
            --bind-to|-bind-to|--bind-to=*) has_bind=1 ;;
            --mca|-mca|--gmca|-gmca) [ $((k + 1)) -lt ${#args[@]} ] && unset "mca[${args[k + 1]}]" ;;
        esac
    done
    for k in plm_rsh_agent oob_tcp_if_include pml btl btl_tcp_if_include; do
        [ -n "${mca[$k]+set}" ] && extra+=(--mca "$k" "${mca[$k]}")
    done
    [ "$has_hostfile" = 1 ] || extra+=(--hostfile "$state/hostfile")
    [ "$has_bind" = 1 ] || extra+=(--bind-to none)
    if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    [ -z "${HALO_NETNS_VERBOSE:-}" ] || log "mpirun ${extra[*]} $*"
    exec mpirun "${extra[@]}" "$@"
}

# ------------------------------------------------------------------------------------------------------ main

[ $# -ge 1 ] || { usage; exit 2; }
sub="$1"; shift
case "$sub" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    hostfile) [ -r "$state/hostfile" ] || die "no cluster is up"; echo "$state/hostfile" ;;
    exec) cmd_exec "$@" ;;
    measure) cmd_measure "$@" ;;
    mpirun) cmd_mpirun "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown subcommand '$sub'" ;;
esac
