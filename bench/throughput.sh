#!/usr/bin/env bash
# throughput.sh: tunnel throughput side by side, in one run, on a testbed of two
# network namespaces joined by a veth (underlay 198.18.0.0/24, nothing joined to
# the root namespace). Every tunnel is up at once, each on its own overlay subnet
# and port; iperf3 measures them one at a time, interleaved (A B C ... A B C ...),
# single stream and 4 streams, unshaped and over a 1 Gbit/s tbf underlay.
#
# Cases (CASES picks a subset, in this order):
#   veth      the bare underlay, no tunnel
#   wgnet     wgnet up on both ends (userspace backend: upstream wireguard-go)
#   upstream  upstream wireguard-go at the same module version, bench/wggo-upstream
#   debian    stock wg-quick with Debian's wireguard-go
#   openvpn   OpenVPN 2.6, TLS p2p with peer fingerprints, AES-256-GCM, DCO off
#   tinc      tinc 1.0, default cipher, after its path-MTU discovery settles
#   upsid     (only when named) upstream as above, started under setsid(1)
#
# Raw results (one line per run) go to RESULTS; bench/report turns them into the
# table and chart of docs/benchmarks.md (WRITE_DOC=1) or prints them.
#
#   sudo bench/throughput.sh
#   sudo CASES="wgnet upstream" REPS=15 STREAMS=1 SHAPES=none bench/throughput.sh
#
# Environment: SECS (per run, default 5), REPS (default 5), STREAMS ("1 4"),
# SHAPES ("none tbf"), CASES (all), ORDER=alternate (every other repetition in
# reverse order), RESULTS (a file; default a temp file),
# WRITE_DOC=1 (rewrite the throughput section of docs/benchmarks.md),
# PROFILE=DIR (CPU profiles of wgnet's and upstream's daemons during one extra
# unshaped single-stream run each; needs perf).
# Needs root, iperf3, ip, tc, ethtool, wg, wg-quick, wireguard-go, openvpn, tincd,
# openssl. A case whose tool is missing is skipped, and the report says so.
set -euo pipefail
SECS=${SECS:-5}
REPS=${REPS:-5}
STREAMS=${STREAMS:-"1 4"}
SHAPES=${SHAPES:-"none tbf"}
CASES=${CASES:-"veth wgnet upstream debian openvpn tinc"}
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
[ "$(id -u)" = 0 ] || { echo "throughput.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in iperf3 ip tc ethtool wg go; do
	command -v "$tool" >/dev/null || { echo "throughput.sh: needs $tool" >&2; exit 2; }
done

work=$(mktemp -d /tmp/wgbench.XXXXXX)
id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
A=wgbench-$id-a B=wgbench-$id-b
RESULTS=${RESULTS:-$work/results.tsv}
: >"$RESULTS"
started=()
cleanup() {
	set +e
	# Stop what this script started, by PID (daemons that forked report theirs in
	# a pid file), then delete the namespaces, which removes every interface.
	for ns in $A $B; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	sleep 0.5
	for ns in $A $B; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -f /var/run/wireguard/w?"$id"?.sock
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "throughput.sh: $*" >&2; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
have() { command -v "$1" >/dev/null; }

go build -o "$work/wgnet" ./cmd/wgnet
go build -o "$work/wggo-upstream" ./bench/wggo-upstream
W="$work/wgnet"

# The underlay: one veth, 198.18.0.1 (A, client) and 198.18.0.2 (B, server).
ip netns add "$A"
ip netns add "$B"
inns "$A" ip link set lo up
inns "$B" ip link set lo up
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
ip -n "$A" addr add 198.18.0.1/24 dev eth0
ip -n "$B" addr add 198.18.0.2/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up

# Overlay addresses per case: A is .1, B is .2.
declare -A NET=([veth]=198.18.0 [wgnet]=10.201.1 [upstream]=10.201.2 [debian]=10.201.3 [openvpn]=10.201.4 [tinc]=10.201.5 [upsid]=10.201.6)
declare -A IFA IFB # tunnel interface names (for ethtool and the report)
declare -A SKIP
ifname() { echo "w$1$id$2"; } # letter, a|b: unique across namespaces (wireguard's socket dir is shared)

b64hex() { base64 -d | od -An -tx1 | tr -d ' \n'; }

setup_wgnet() {
	(cd "$work" && $W init bench --subnet 10.201.1.0/24 --topology mesh >/dev/null &&
		$W add a --endpoint 198.18.0.1:51820 >/dev/null && $W add b --endpoint 198.18.0.2:51820 >/dev/null &&
		$W render >/dev/null)
	IFA[wgnet]=$(ifname n a) IFB[wgnet]=$(ifname n b)
	cp "$work/out/a/wg0.conf" "$work/${IFA[wgnet]}.conf"
	cp "$work/out/b/wg0.conf" "$work/${IFB[wgnet]}.conf"
	inns "$A" env WGNET_STATE_DIR="$work/state-a" $W up "$work/${IFA[wgnet]}.conf" >"$work/wgnet-up-a.log" 2>&1
	inns "$B" env WGNET_STATE_DIR="$work/state-b" $W up "$work/${IFB[wgnet]}.conf" >"$work/wgnet-up-b.log" 2>&1
}

# wggo_upstream CASE LETTER NET PORT [WRAPPER...]: bench/wggo-upstream on both ends.
wggo_upstream() {
	local c=$1 l=$2 net=$3 port=$4 ka kb s
	shift 4
	ka=$(wg genkey) kb=$(wg genkey)
	IFA[$c]=$(ifname "$l" a) IFB[$c]=$(ifname "$l" b)
	printf 'private_key=%s\nlisten_port=%s\npublic_key=%s\nendpoint=198.18.0.2:%s\nallowed_ip=%s.2/32\n' \
		"$(echo "$ka" | b64hex)" "$port" "$(echo "$kb" | wg pubkey | b64hex)" "$port" "$net" >"$work/$c-a.uapi"
	printf 'private_key=%s\nlisten_port=%s\npublic_key=%s\nendpoint=198.18.0.1:%s\nallowed_ip=%s.1/32\n' \
		"$(echo "$kb" | b64hex)" "$port" "$(echo "$ka" | wg pubkey | b64hex)" "$port" "$net" >"$work/$c-b.uapi"
	for s in a b; do
		local ns=$A ifn=${IFA[$c]} h=1
		[ $s = b ] && ns=$B ifn=${IFB[$c]} h=2
		inns "$ns" "$@" "$work/wggo-upstream" -name "$ifn" -addr "$net.$h/24" -uapi "$work/$c-$s.uapi" \
			-ready "$work/$c-$s.ready" >"$work/$c-$s.log" 2>&1 &
	done
	for _ in $(seq 50); do [ -e "$work/$c-a.ready" ] && [ -e "$work/$c-b.ready" ] && return; sleep 0.1; done
	log "wggo-upstream did not come up: $(cat "$work/$c"-?.log)"
	return 1
}
setup_upstream() { wggo_upstream upstream u 10.201.2 51821; }
# Not in the default CASES: upstream started in a session of its own, the way
# wgnet's daemon was started before it stayed in the caller's session.
setup_upsid() { wggo_upstream upsid s 10.201.6 51826 setsid; }

setup_debian() {
	have wg-quick && have wireguard-go || return 1
	local ka kb
	ka=$(wg genkey) kb=$(wg genkey)
	IFA[debian]=$(ifname d a) IFB[debian]=$(ifname d b)
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.201.3.1/24\nListenPort = 51822\nMTU = 1420\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.201.3.2/32\nEndpoint = 198.18.0.2:51822\n' \
		"$ka" "$(echo "$kb" | wg pubkey)" >"$work/${IFA[debian]}.conf"
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.201.3.2/24\nListenPort = 51822\nMTU = 1420\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.201.3.1/32\nEndpoint = 198.18.0.1:51822\n' \
		"$kb" "$(echo "$ka" | wg pubkey)" >"$work/${IFB[debian]}.conf"
	chmod 600 "$work"/wd*.conf
	inns "$A" env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$work/${IFA[debian]}.conf" >"$work/debian-a.log" 2>&1
	inns "$B" env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$work/${IFB[debian]}.conf" >"$work/debian-b.log" 2>&1
}

# OpenVPN as openvpn-examples(5) sets it up ("peer-fingerprint"): self-signed EC
# certificates, each side pinning the other's SHA-256 fingerprint, no CA, dh none;
# point-to-point (tls-server/tls-client with ifconfig) instead of server mode.
setup_openvpn() {
	have openvpn && have openssl || return 1
	local d=$work/ovpn s
	mkdir -p "$d"
	for s in a b; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -keyout "$d/$s.key" -out "$d/$s.crt" \
			-nodes -sha256 -days 3650 -subj "/CN=$s" 2>/dev/null
	done
	fp() { openssl x509 -fingerprint -sha256 -noout -in "$1" | sed 's/.*=//'; }
	IFA[openvpn]=$(ifname o a) IFB[openvpn]=$(ifname o b)
	conf() { # side, interface, own and peer's host number (underlay and overlay), role lines
		printf '%s\n' "dev $2" "dev-type tun" "proto udp" "lport 1194" "remote 198.18.0.$4 1194" "$5" \
			"cert $d/$1.crt" "key $d/$1.key" "peer-fingerprint $(fp "$d/$([ "$1" = a ] && echo b || echo a).crt")" \
			"ifconfig 10.201.4.$3 10.201.4.$4" "data-ciphers AES-256-GCM" "disable-dco" "tun-mtu 1420" \
			"keepalive 10 60" "writepid $d/$1.pid" "verb 3" >"$d/$1.conf"
	}
	conf a "${IFA[openvpn]}" 1 2 tls-client
	conf b "${IFB[openvpn]}" 2 1 $'tls-server\ndh none'
	# In the foreground, as Debian's openvpn-server@.service runs it: --daemon would
	# setsid, and a session of its own is a scheduler autogroup of its own (see
	# device.Spawn), which costs throughput on a busy machine.
	inns "$B" openvpn --config "$d/b.conf" --log "$d/b.log" &
	inns "$A" openvpn --config "$d/a.conf" --log "$d/a.log" &
	for _ in $(seq 100); do
		grep -q "Initialization Sequence Completed" "$d/a.log" 2>/dev/null &&
			grep -q "Initialization Sequence Completed" "$d/b.log" 2>/dev/null && return 0
		sleep 0.2
	done
	log "openvpn did not come up: $(tail -n 3 "$d"/?.log)"
	return 1
}

# tinc 1.0 as tinc.conf(5) and its manual set it up: one net directory per node
# with tinc.conf, hosts/ with each node's Address, Subnet and public key (tincd -K),
# and a tinc-up script; router mode and the default cipher (blowfish-cbc, sha1).
settled() { # tinc log, node: the last dump shows node's pmtu with min = max
	grep -E "^.* $2 at .* pmtu " "$1" | tail -n1 | grep -qE 'pmtu ([0-9]+) \(min \1 max \1\)'
}
setup_tinc() {
	have tincd || return 1
	local s o h ns
	IFA[tinc]=$(ifname t a) IFB[tinc]=$(ifname t b)
	for s in a b; do
		o=b h=1 ns=$A
		[ $s = b ] && o=a h=2 ns=$B
		local d=$work/tinc-$s
		mkdir -p "$d/hosts"
		printf 'Name = %s\nInterface = %s\n' "$s" "$([ $s = a ] && echo "${IFA[tinc]}" || echo "${IFB[tinc]}")" >"$d/tinc.conf"
		[ $s = a ] && printf 'ConnectTo = b\n' >>"$d/tinc.conf"
		printf 'Address = 198.18.0.%s\nPort = 655\nSubnet = 10.201.5.%s/32\n' "$h" "$h" >"$d/hosts/$s"
		printf '#!/bin/sh\nip addr add 10.201.5.%s/24 dev $INTERFACE\nip link set $INTERFACE up\n' "$h" >"$d/tinc-up"
		chmod +x "$d/tinc-up"
		inns "$ns" tincd -c "$d" -K 4096 </dev/null >/dev/null 2>&1
	done
	cp "$work/tinc-a/hosts/a" "$work/tinc-b/hosts/a"
	cp "$work/tinc-b/hosts/b" "$work/tinc-a/hosts/b"
	# -D (no detach), as Debian's tinc@.service runs it; detaching would setsid
	# (see openvpn above).
	inns "$B" tincd -D -c "$work/tinc-b" --pidfile "$work/tinc-b/pid" --logfile="$work/tinc-b/log" &
	inns "$A" tincd -D -c "$work/tinc-a" --pidfile "$work/tinc-a/pid" --logfile="$work/tinc-a/log" &
	# Path-MTU discovery: keep traffic going and ask each tincd for its node list
	# (SIGUSR2 logs "pmtu P (min M max X)") until each has fixed the other's MTU.
	for _ in $(seq 60); do
		inns "$A" ping -c3 -i0.2 -W1 -s 1400 10.201.5.2 >/dev/null 2>&1 || true
		kill -USR2 "$(cat "$work/tinc-a/pid" | awk '{print $1}')" "$(cat "$work/tinc-b/pid" | awk '{print $1}')" 2>/dev/null
		sleep 0.2
		if settled "$work/tinc-a/log" b && settled "$work/tinc-b/log" a; then
			echo -e "#note\ttinc path MTU after discovery: $(grep -E " b at .* pmtu " "$work/tinc-a/log" | tail -n1 | grep -oE 'pmtu [0-9]+')" >>"$RESULTS"
			return 0
		fi
	done
	log "tinc: PMTU discovery did not settle: $(tail -n 3 "$work"/tinc-?/log)"
	return 1
}

for c in $CASES; do
	[ "$c" = veth ] && continue
	if ! "setup_$c"; then
		log "case $c: could not be set up, skipped"
		SKIP[$c]=1
		continue
	fi
	if ! inns "$A" ping -c3 -i0.2 -W2 "${NET[$c]}.2" >/dev/null; then
		log "case $c: no ping through the tunnel, skipped"
		SKIP[$c]=1
	fi
done

# TUN offloads of wgnet's interface (and upstream's, for comparison).
for c in wgnet upstream; do
	[ -n "${IFA[$c]:-}" ] || continue
	off=$(inns "$A" ethtool -k "${IFA[$c]}" | grep -E '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-udp-segmentation):' | tr -s '\t ' ' ' | paste -sd ';')
	echo -e "#offload\t$c\t$off" >>"$RESULTS"
	case $off in
	*"tcp-segmentation-offload: on"*) ;;
	*) log "WARNING: $c's TUN ${IFA[$c]} has TSO off: $off" ;;
	esac
done
echo -e "#machine\t$(nproc) cores\t$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')\t$(uname -sr)\t$(iperf3 --version | head -1)" >>"$RESULTS"
for c in $CASES; do
	[ -n "${SKIP[$c]:-}" ] && echo -e "#skipped\t$c" >>"$RESULTS"
done
echo -e "#versions\twireguard-go(debian) $(wireguard-go --version 2>/dev/null | head -1 | awk '{print $2}')\topenvpn $(openvpn --version 2>/dev/null | head -1 | awk '{print $2}')\ttinc $(tincd --version 2>/dev/null | head -1 | awk '{print $3}')" >>"$RESULTS"

# Tunnel processes of case c in namespace ns (empty for veth).
pids_of() {
	local c=$1 ns=$2 p cmd pat
	case $c in
	veth) return 0 ;;
	wgnet) pat="_userspace" ;;
	upstream) pat="wggo-upstream -name wu" ;;
	upsid) pat="wggo-upstream -name ws" ;;
	debian) pat="wireguard-go" ;;
	openvpn) pat="openvpn" ;;
	tinc) pat="tincd" ;;
	esac
	for p in $(ip netns pids "$ns"); do
		cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
		case $cmd in *"$pat"*) echo "$p" ;; esac
	done
}
# CPU time (clock ticks) of the given PIDs, user + system.
ticks() {
	local t=0 p s
	for p in "$@"; do
		s=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + ${s% *} + ${s#* }))
	done
	echo $t
}

shape() { # none|tbf
	local ns
	for ns in $A $B; do
		if [ "$1" = tbf ]; then
			inns "$ns" tc qdisc replace dev eth0 root tbf rate 1gbit burst 128kb latency 20ms
		else
			inns "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
		fi
	done
}

# One iperf3 run: case, streams, shape, rep. Appends a result line.
run() {
	local c=$1 p=$2 sh=$3 rep=$4 dst=${NET[$1]}.2 pids t0 t1 out port=$((5201 + RANDOM % 1000))
	pids=$( (pids_of "$c" "$A"; pids_of "$c" "$B") | tr '\n' ' ')
	inns "$B" timeout $((SECS + 20)) iperf3 -s -1 -B "$dst" -p "$port" >/dev/null 2>&1 &
	local srv=$!
	for _ in $(seq 20); do inns "$B" ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.05; done
	# shellcheck disable=SC2086
	t0=$(ticks $pids)
	out=$(inns "$A" timeout $((SECS + 15)) iperf3 -c "$dst" -p "$port" -t "$SECS" -P "$p" -J 2>/dev/null) || out=""
	# shellcheck disable=SC2086
	t1=$(ticks $pids)
	wait "$srv" 2>/dev/null || true
	if [ -z "$out" ]; then
		log "run $c P$p $sh #$rep failed"
		echo -e "$c\t$p\t$sh\t$rep\tNaN\t0\t0\t0\t0" >>"$RESULTS"
		return
	fi
	echo "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
e = j["end"]
rx = e["sum_received"]
mss = j["start"].get("tcp_mss_default", 0)
print("\t".join(str(x) for x in (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
      "%.4f" % (rx["bits_per_second"] / 1e9), rx["bytes"], "%.3f" % rx["seconds"],
      "%.2f" % ((int(sys.argv[5]) / 100.0)), mss)))
' "$c" "$p" "$sh" "$rep" "$((t1 - t0))" >>"$RESULTS"
	tail -n1 "$RESULTS" >&2
}

# UDP GSO/GRO of wgnet's bind: during a short run, strace the sending daemon's
# sendmmsg and the receiving daemon's recvmmsg for the UDP_SEGMENT (0x67) and
# UDP_GRO (0x68) control messages wireguard-go's StdNetBind uses when the kernel
# offers them. strace slows that run down; it is not one of the measured runs.
bind_offload() { # case
	local c=$1 tids_a tids_b dst=${NET[$1]}.2 port=$((6300 + RANDOM % 500))
	tids_a=$(for p in $(pids_of "$c" "$A"); do ls "/proc/$p/task"; done | sed 's/^/-p /' | tr '\n' ' ')
	tids_b=$(for p in $(pids_of "$c" "$B"); do ls "/proc/$p/task"; done | sed 's/^/-p /' | tr '\n' ' ')
	inns "$B" timeout 15 iperf3 -s -1 -B "$dst" -p "$port" >/dev/null 2>&1 &
	local srv=$!
	sleep 0.3
	inns "$A" timeout 10 iperf3 -c "$dst" -p "$port" -t 3 >/dev/null 2>&1 &
	local cl=$!
	sleep 0.5
	# shellcheck disable=SC2086
	timeout 1 strace -qq -e trace=sendmmsg,sendmsg -e signal=none -v -s 0 $tids_a -o "$work/strace-tx" 2>/dev/null &
	local st1=$!
	# shellcheck disable=SC2086
	timeout 1 strace -qq -e trace=recvmmsg,recvmsg -e signal=none -v -s 0 $tids_b -o "$work/strace-rx" 2>/dev/null &
	local st2=$!
	wait $cl $st1 $st2 $srv 2>/dev/null || true
	local tx rx ntx nrx
	tx=$(grep -cE 'cmsg_level=SOL_UDP, cmsg_type=(0x67|UDP_SEGMENT)' "$work/strace-tx" 2>/dev/null || true)
	rx=$(grep -cE 'cmsg_level=SOL_UDP, cmsg_type=(0x68|UDP_GRO)' "$work/strace-rx" 2>/dev/null || true)
	ntx=$(grep -cE '^[0-9]+ +sendm' "$work/strace-tx" 2>/dev/null || true)
	nrx=$(grep -cE '^[0-9]+ +recvm.*= [1-9]' "$work/strace-rx" 2>/dev/null || true)
	echo -e "#note\t$c's UDP sockets during a 1 s strace: ${tx:-0} of ${ntx:-0} send calls carry UDP_SEGMENT (GSO), ${rx:-0} of ${nrx:-0} receive calls that returned data carry UDP_GRO" >>"$RESULTS"
}
if have strace; then
	for c in wgnet upstream; do
		[ -n "${IFA[$c]:-}" ] && [ -z "${SKIP[$c]:-}" ] && bind_offload "$c"
	done
fi

if [ -n "${PROFILE:-}" ] && have perf; then
	mkdir -p "$PROFILE"
	for c in wgnet upstream; do
		[ -n "${IFA[$c]:-}" ] && [ -z "${SKIP[$c]:-}" ] || continue
		pa=$(pids_of "$c" "$A") pb=$(pids_of "$c" "$B")
		perf record -q -g -o "$PROFILE/$c-a.perf" -p "$pa" -- sleep $((SECS + 2)) >/dev/null 2>&1 &
		pr=$!
		perf record -q -g -o "$PROFILE/$c-b.perf" -p "$pb" -- sleep $((SECS + 2)) >/dev/null 2>&1 &
		pr2=$!
		sleep 0.5
		run "$c" 1 none profile
		wait $pr $pr2 || true
	done
fi

# Repetition by repetition: every shape, stream count and case once, so that a
# change in the machine's load (it is shared) falls on all of them alike.
for rep in $(seq "$REPS"); do
	for sh in $SHAPES; do
		shape "$sh"
		for p in $STREAMS; do
			order=$CASES
			# ORDER=alternate: every other repetition in reverse (A B C, C B A, ...),
			# so that no case always runs first.
			if [ "${ORDER:-}" = alternate ] && [ $((rep % 2)) = 0 ]; then
				order=$(echo "$CASES" | tr ' ' '\n' | tac | tr '\n' ' ')
			fi
			for c in $order; do
				[ -n "${SKIP[$c]:-}" ] && continue
				run "$c" "$p" "$sh" "$rep"
			done
		done
	done
done
shape none

if [ "${WRITE_DOC:-}" = 1 ]; then
	go run ./bench/report -in "$RESULTS" -doc docs/benchmarks.md -svg docs/benchmarks-throughput.svg
else
	go run ./bench/report -in "$RESULTS"
fi
# An if, not &&: with RESULTS given, a false test must not be the script's exit status.
if [ "$RESULTS" = "$work/results.tsv" ]; then
	cp "$RESULTS" "/tmp/wgbench-$id.tsv" && log "raw results: /tmp/wgbench-$id.tsv"
fi
