#!/bin/sh
# uproutes.sh: `wgnet up` of configs whose 1,000, 4,000 and 10,000 peers each need
# a route, next to upstream wireguard-go (bench/wggo-upstream) given the same
# peers and routes, to `ip -batch` adding the same routes and to `wgnet up` of the
# same config with Table = off (no routes), interleaved. Runs BenchmarkUpRoutes
# (internal/up/bench_routes_linux_test.go) inside a throw-away network namespace
# (netnsbench.sh). Needs root.
#
#   bench/uproutes.sh                 # 5 ups per size and case
#   BENCHTIME=10x SIZE=10000 bench/uproutes.sh
#   WGNET_BENCH_BIN=/tmp/old/wgnet BENCHTIME=1x bench/uproutes.sh   # an older build
exec "$(dirname "$0")/netnsbench.sh" "^BenchmarkUpRoutes${SIZE:+/$SIZE}\$" "${BENCHTIME:-5x}"
