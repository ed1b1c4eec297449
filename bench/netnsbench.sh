#!/bin/sh
# netnsbench.sh BENCH [BENCHTIME]: runs the go benchmark BENCH (a -test.bench
# pattern) of internal/up inside a throw-away network namespace, which it deletes
# afterwards, with $WGNET_BENCH_NETNS naming it (the benchmarks refuse to create
# interfaces anywhere else). Needs root. sync10k.sh and uproutes.sh use it.
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "netnsbench.sh: needs root (it creates a network namespace)" >&2
	exit 2
fi
bench=$1
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
ns="wgb-$(basename "$tmp" | tr -dc 'a-zA-Z0-9' | tail -c 8)"
cleanup() {
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
go test -c -o "$tmp/up.test" ./internal/up
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" env WGNET_BENCH_NETNS="$ns" "$tmp/up.test" -test.run '^$' -test.bench "$bench" \
	-test.benchtime "${2:-5x}" -test.v
