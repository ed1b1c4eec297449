#!/bin/bash
# checkmesh.sh: the real `wgnet check` command on a 1,000-host full mesh, from
# its spec and from its 1,000 rendered files (129 MB), timed as a user runs it
# (a fresh process each time), next to its baseline from the same run: reading
# those files (cat > /dev/null). With BEFORE_BIN, an older build is timed too,
# interleaved with this one (the order alternating every repetition), and both
# builds' findings must be the same. Prints wall and CPU (user + sys) seconds
# of every run, the load average before each repetition, and the medians.
# Needs no root; everything is in a temporary directory, removed at the end.
#
#   bench/checkmesh.sh                                  # this tree, 7 repetitions
#   BEFORE_BIN=/tmp/old/wgnet REPS=9 bench/checkmesh.sh
#   HOSTS=300 bench/checkmesh.sh
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-7}
HOSTS=${HOSTS:-1000}
dir=$(mktemp -d /tmp/wgnet-checkmesh.XXXXXX)
trap 'rm -rf "$dir"' EXIT
after=${AFTER_BIN:-}
if [ -z "$after" ]; then
	after=$dir/wgnet
	go build -o "$after" ./cmd/wgnet
fi
bins="after"
[ -n "${BEFORE_BIN:-}" ] && bins="before after"
bin() { if [ "$1" = before ]; then echo "$BEFORE_BIN"; else echo "$after"; fi; }

# The mesh, as BenchmarkCheckMesh1000's: host hI at 10.64.x.y in 10.64.0.0/16,
# dialled at 198.18.x.y:51820; keys from wgnet genkey.
mesh=$dir/mesh
mkdir -p "$mesh/wgnet.secrets"
chmod 700 "$mesh/wgnet.secrets"
{
	printf 'version: 1\nnetwork: big\nsubnets: [10.64.0.0/16]\ntopology: mesh\nhosts:\n'
	for i in $(seq 1 "$HOSTS"); do
		printf '  - name: h%d\n    endpoint: 198.18.%d.%d:51820\n    address: [10.64.%d.%d]\n' \
			"$i" $((i / 250)) $((i % 250 + 1)) $((i / 250)) $((i % 250 + 1))
		(umask 077 && "$after" genkey >"$mesh/wgnet.secrets/h$i.key")
	done
} >"$mesh/wgnet.yaml"
chmod 600 "$mesh/wgnet.yaml"
(cd "$mesh" && "$after" render --out out >/dev/null)
files=$(cd "$mesh" && ls out/*/*.conf)
echo "mesh of $HOSTS hosts: $(echo "$files" | wc -l) files, $(du -sh "$mesh/out" | cut -f1)"

# timed NAME CMD...: runs CMD in the mesh directory, appends "NAME wall cpu" to
# $dir/times (exit status 1, findings, counts as run).
timed() {
	name=$1
	shift
	TIMEFORMAT='%R %U %S'
	t=$( { time (cd "$mesh" && "$@" >"$dir/out.$name" 2>/dev/null || [ $? = 1 ]) ; } 2>&1 )
	echo "$t" | awk -v n="$name" '{ printf "%s %.3f %.3f\n", n, $1, $2 + $3 }' >>"$dir/times"
}

for rep in $(seq 1 "$REPS"); do
	order=$bins
	[ $((rep % 2)) = 0 ] && order=$(echo "$bins" | tr ' ' '\n' | tac | tr '\n' ' ')
	echo "repetition $rep: load average $(cut -d' ' -f1-3 /proc/loadavg), order: $order"
	timed read sh -c 'cat out/*/*.conf >/dev/null'
	for b in $order; do
		# shellcheck disable=SC2086 # $files is a list of paths without spaces
		timed "$b-files" "$(bin "$b")" check $files
		timed "$b-spec" "$(bin "$b")" check
	done
	if [ -n "${BEFORE_BIN:-}" ]; then
		for what in files spec; do
			cmp -s "$dir/out.before-$what" "$dir/out.after-$what" || {
				echo "the findings of the two builds differ ($what)" >&2
				exit 1
			}
		done
	fi
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "every run (seconds): name wall cpu"
cat "$dir/times"
echo
echo "medians over $REPS repetitions (seconds):"
awk '
	{ wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " $3 }
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		for (k in wall) printf "%-13s wall %6.3f  cpu %6.3f\n", k, median(wall[k]), median(cpu[k])
	}' "$dir/times" | sort
