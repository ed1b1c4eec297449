#!/usr/bin/env bash
# Throughput of a WireGuard tunnel between two network namespaces, three ways, side
# by side in one run: the plain veth underlay (baseline), wgnet's userspace backend
# (upstream wireguard-go on a TUN with GSO/GRO offloads), and stock wg-quick falling
# back to Debian's wireguard-go. Prints Gbit/s and ratios. Needs root, iperf3,
# wireguard-tools and wireguard-go. Traffic stays inside the two namespaces it makes.
#
#   sudo bench/throughput.sh [SECONDS]
set -euo pipefail
secs=${1:-5}
cd "$(dirname "$0")/.."
for tool in iperf3 wg wg-quick wireguard-go ip; do
	command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }

work=$(mktemp -d)
id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
A=wgb-$id-a B=wgb-$id-b
cleanup() {
	for p in $(cat "$work"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	for ns in $A $B; do
		for s in /var/run/wireguard/wb"$id"*.sock; do [ -e "$s" ] && rm -f "$s"; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/wgnet" ./cmd/wgnet
W="$work/wgnet"
ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link add eth0 type veth peer name eth0 netns $B
ip -n $A addr add 198.18.9.1/24 dev eth0; ip -n $B addr add 198.18.9.2/24 dev eth0
ip -n $A link set eth0 up; ip -n $B link set eth0 up

(cd "$work" && $W init bench --subnet 192.168.77.0/24 --topology mesh >/dev/null &&
	$W add a --endpoint 198.18.9.1:51820 >/dev/null && $W add b --endpoint 198.18.9.2:51820 >/dev/null &&
	$W render >/dev/null)

iperf() { # NS-server NS-client ADDR -> Gbit/s
	ip netns exec "$1" iperf3 -s -1 -D -I "$work/iperf.pid" >/dev/null
	sleep 0.3
	ip netns exec "$2" timeout $((secs + 10)) iperf3 -c "$3" -t "$secs" -J |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}

base=$(iperf $B $A 198.18.9.2)

# wgnet userspace backend.
cp "$work/out/a/wg0.conf" "$work/wb${id}a.conf"; cp "$work/out/b/wg0.conf" "$work/wb${id}b.conf"
ip netns exec $A env WGNET_STATE_DIR="$work/state-a" $W up "$work/wb${id}a.conf" >/dev/null 2>&1
ip netns exec $B env WGNET_STATE_DIR="$work/state-b" $W up "$work/wb${id}b.conf" >/dev/null 2>&1
ip netns exec $A ping -c1 -W2 192.168.77.2 >/dev/null
wgnet=$(iperf $B $A 192.168.77.2)
ip netns exec $A env WGNET_STATE_DIR="$work/state-a" $W down "wb${id}a" >/dev/null 2>&1
ip netns exec $B env WGNET_STATE_DIR="$work/state-b" $W down "wb${id}b" >/dev/null 2>&1

# Stock wg-quick, which falls back to Debian's wireguard-go (no kernel module here).
for h in a b; do sed 's/^PostUp = sysctl.*$//' "$work/out/$h/wg0.conf" >"$work/wc${id}$h.conf"; chmod 600 "$work/wc${id}$h.conf"; done
ip netns exec $A env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$work/wc${id}a.conf" >/dev/null 2>&1
ip netns exec $B env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$work/wc${id}b.conf" >/dev/null 2>&1
ip netns exec $A ping -c1 -W2 192.168.77.2 >/dev/null
stock=$(iperf $B $A 192.168.77.2)
ip netns exec $A wg-quick down "$work/wc${id}a.conf" >/dev/null 2>&1 || true
ip netns exec $B wg-quick down "$work/wc${id}b.conf" >/dev/null 2>&1 || true

printf '%-44s %8s Gbit/s\n' "veth underlay, no WireGuard (baseline)" "$base"
printf '%-44s %8s Gbit/s   %s of baseline\n' "wgnet up (upstream wireguard-go, TUN GSO/GRO)" "$wgnet" "$(python3 -c "print('%.2f' % ($wgnet/$base))")"
printf '%-44s %8s Gbit/s   %s of baseline\n' "wg-quick + Debian wireguard-go (2022)" "$stock" "$(python3 -c "print('%.2f' % ($stock/$base))")"
printf '%-44s %8sx\n' "wgnet / stock" "$(python3 -c "print('%.1f' % ($wgnet/$stock))")"
