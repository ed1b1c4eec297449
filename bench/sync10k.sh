#!/bin/sh
# sync10k.sh: a one-peer change on an interface with 10,000 peers, `wgnet sync`
# (reading the running state back included) next to the stock `wg syncconf` on the
# same change, and how many peers each change touched (counted by wireguard-go).
# Runs BenchmarkSyncOnePeerOf10000 (internal/up/bench_linux_test.go) inside a
# throw-away network namespace (netnsbench.sh). Needs root, wg.
#
#   bench/sync10k.sh              # 10 changes per tool
#   BENCHTIME=30x bench/sync10k.sh
#   WGNET_BENCH_BEFORE_BIN=/tmp/old/wgnet bench/sync10k.sh   # an older build too, same run
exec "$(dirname "$0")/netnsbench.sh" '^BenchmarkSyncOnePeerOf10000$' "${BENCHTIME:-10x}"
