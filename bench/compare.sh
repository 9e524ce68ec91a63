#!/usr/bin/env bash
# Runs wask-bench, dask_bench.py and ray_bench.py one after another, --runs
# times, in one sitting on this machine; saves every JSON line under
# bench/results/<timestamp>/ and prints a markdown table of medians
# (bench/table.py).
#
# Usage: bench/compare.sh [--runs N] [--peer-n LIST] [-- WASK_BENCH_ARGS...]
#   --runs N        rounds of (wask, dask, ray); default 3
#   --peer-n LIST   map_gather sizes for the peers, comma-separated; default
#                   10000 (each extra size is one more full run of the peer
#                   script; dask needs ~3 min for 100000 tasks). wask-bench
#                   runs 10000,100000 unless WASK_BENCH_ARGS say otherwise.
# Environment:
#   PEERS_VENV      the peers' virtualenv (default /tmp/peers-venv), made and
#                   filled with pip when it lacks dask 2026.8.0 or ray 2.60.0
#   PEERS_DIR       the peers' scripts (default <repo>/../shared/peers)
set -euo pipefail

runs=3
peer_n=10000
wask_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --runs=*) runs=${1#--runs=}; shift ;;
        --peer-n) peer_n=$2; shift 2 ;;
        --peer-n=*) peer_n=${1#--peer-n=}; shift ;;
        --) shift; wask_args=("$@"); break ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
peers=${PEERS_DIR:-$root/../shared/peers}
venv=${PEERS_VENV:-/tmp/peers-venv}
py=$venv/bin/python
out=$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
echo "compare.sh: results in $out" >&2

# ---- the peers' environment
[ -x "$py" ] || python3 -m venv "$venv"
if ! "$py" -c 'import dask, distributed, numpy, psutil; assert distributed.__version__ == "2026.8.0"' 2>/dev/null; then
    echo "compare.sh: installing dask[distributed]==2026.8.0 numpy psutil into $venv" >&2
    if ! "$venv/bin/pip" install "dask[distributed]==2026.8.0" numpy psutil >"$out/pip-dask.log" 2>&1; then
        echo "pip install dask[distributed]==2026.8.0 failed: $(tail -n 1 "$out/pip-dask.log")" >"$out/dask.skipped"
    fi
fi
if ! "$py" -c 'import ray; assert ray.__version__ == "2.60.0"' 2>/dev/null; then
    echo "compare.sh: installing ray==2.60.0 into $venv" >&2
    if ! "$venv/bin/pip" install ray==2.60.0 psutil >"$out/pip-ray.log" 2>&1; then
        echo "pip install ray==2.60.0 failed: $(grep -m 1 -E '^ERROR' "$out/pip-ray.log" || tail -n 1 "$out/pip-ray.log")" >"$out/ray.skipped"
    fi
fi

# ---- wask-bench
echo "compare.sh: building wask-bench (release)" >&2
(cd "$root" && cargo build --release -p wask-bench >&2)
bin=${CARGO_TARGET_DIR:-$root/target}/release/wask-bench

# Runs one benchmark; a failure is recorded in <system>.skipped, not fatal.
run() {
    local system=$1 file=$2
    shift 2
    [ -e "$out/$system.skipped" ] && return 0
    echo "compare.sh: $system: $*" >&2
    local rc=0
    "$@" >"$out/$file.jsonl" 2>"$out/$file.err" || rc=$?
    if [ "$rc" != 0 ]; then
        echo "$system failed (exit $rc, see $file.err): $(grep -v '^\s*$' "$out/$file.err" | tail -n 1)" >"$out/$system.skipped"
    fi
}

for r in $(seq 1 "$runs"); do
    run wask "wask-$r" "$bin" "${wask_args[@]}"
    for n in ${peer_n//,/ }; do
        run dask "dask-$r-n$n" "$py" "$peers/dask_bench.py" --n "$n" --workers 2 --threads 1
    done
    for n in ${peer_n//,/ }; do
        run ray "ray-$r-n$n" "$py" "$peers/ray_bench.py" --n "$n" --cpus 2
    done
done

python3 "$root/bench/table.py" "$out" | tee "$out/table.md"
