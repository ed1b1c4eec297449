#!/bin/sh
# sync10k.sh: a one-peer change on an interface with 10,000 peers, `wgnet sync`
# (reading the running state back included) next to the stock `wg syncconf` on the
# same change, and how many peers each change touched (counted by wireguard-go).
# Runs BenchmarkSyncOnePeerOf10000 (internal/up/bench_linux_test.go) inside a
# throw-away network namespace, which it deletes afterwards. Needs root, wg.
#
#   bench/sync10k.sh              # 10 changes per tool
#   BENCHTIME=30x bench/sync10k.sh
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "sync10k.sh: needs root (it creates a network namespace)" >&2
	exit 2
fi
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
ip netns exec "$ns" env WGNET_BENCH_NETNS="$ns" "$tmp/up.test" -test.run '^$' -test.bench '^BenchmarkSyncOnePeerOf10000$' \
	-test.benchtime "${BENCHTIME:-10x}" -test.v
