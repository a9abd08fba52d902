#!/usr/bin/env bash
# Halo's benchmark: distributed training (vanilla, AdaQP, PipeGCN, PipeQS and their ablations) on emulated hosts
# with capped links, the PyTorch Geometric peer and the kernel roofline, in one run; regenerates docs/benchmarks.md
# and its plots.
#
#   bash bench/bench.sh                 # the default matrix (bench/harness/default.json), under an hour here
#   bash bench/bench.sh --quick         # smoke run: few epochs, one repetition, a few minutes
#   bash bench/bench.sh --config FILE   # another matrix (JSON, see bench/harness/default.json)
#   extra options go to bench/harness/bench.py (--resume, --skip-peer, --skip-microbench, --out DIR, …);
#   `bash bench/bench.sh --report-only` regenerates the document from the last results without measuring.
#
# Needs root (network namespaces: scripts/netns/cluster.sh). Results: bench/results/bench/ (git-ignored);
# --quick and other configurations write bench/results/bench-<name>/ and their own benchmarks.md there, so a
# smoke run never overwrites docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export HALO_BENCH_T0="$(date +%s.%N)"
invocation="bash bench/bench.sh${*:+ $*}"

config=bench/harness/default.json
pass=()
report_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) config=bench/harness/quick.json; shift ;;
        --config) config="${2:?--config needs a file}"; shift 2 ;;
        --config=*) config="${1#*=}"; shift ;;
        --report-only) report_only=1; pass+=("$1"); shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) pass+=("$1"); shift ;;
    esac
done

if [ "$report_only" = 1 ]; then
    exec python3 bench/harness/bench.py --config "$config" --invocation "$invocation" "${pass[@]}"
fi

[ "$(id -u)" = 0 ] || { echo "bench.sh: needs root (network namespaces)" >&2; exit 2; }

# Whatever happens, leave no emulated cluster behind — but only one this benchmark created (bench.py marks it).
cleanup() {
    local owned
    for owned in bench/results/bench*/.cluster-owned; do
        if [ -e "$owned" ]; then
            bash scripts/netns/cluster.sh down || true
            rm -f "$owned"
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash scripts/install-deps.sh

# The release binary, built for this CPU. Someone may be editing the tree: retry a failed build a few times.
for attempt in 1 2 3 4 5 6; do
    # pipefail: the pipeline fails if the build does.
    if swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo 2>&1 | tail -n 3; then break; fi
    [ "$attempt" = 6 ] && { echo "bench.sh: release build failed 6 times" >&2; exit 1; }
    echo "bench.sh: build failed (attempt $attempt); retrying in 60 s" >&2
    sleep 60
done

# Snapshot the binary: other engineers build in the same tree (possibly with other flags), and a relinked
# .build/release/halo halfway through would mix binaries in one matrix. Every run uses this copy.
sum="$(sha256sum .build/release/halo | cut -c1-16)"
halo="$PWD/bench/results/bin/halo-$sum"
if [ ! -x "$halo" ]; then
    mkdir -p bench/results/bin
    cp .build/release/halo "$halo.tmp" && mv "$halo.tmp" "$halo"
fi
echo "bench.sh: using $halo" >&2

# The PyG peer's venv (idempotent; its last line is the venv's python). Without it the peer is skipped.
py=""
if py="$(bash bench/setup_pyg_venv.sh | tail -n 1)" && [ -x "$py" ]; then :; else
    echo "bench.sh: PyG venv unavailable; the peer comparison will show Halo only" >&2
    py=""
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
python3 bench/harness/bench.py --config "$config" --invocation "$invocation" --halo "$halo" \
    ${py:+--python-peer "$py"} "${pass[@]}" || status=$?
echo "bench.sh: done in $(awk -v t0="$HALO_BENCH_T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", (t1 - t0) / 60 }') min" >&2
exit $status
