#!/usr/bin/env bash
# Builds Halo for this machine's CPU and runs a distributed training (2 ranks) on a synthetic graph it generates.
# Extra arguments go to `halo train` (e.g. --epochs 50 --model sage).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/install-deps.sh
# -target-cpu native: the SIMD kernels use the host's full vector width (AVX-512 here). Library users who build
# without it get portable code.
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo
mkdir -p runs
# Two ranks (threads of one process) on a synthetic graph of 20,000 nodes, METIS-partitioned on the fly.
.build/release/halo train --parts 2 --epochs 100 --json-out runs/demo.json "$@"
echo "results: runs/demo.json"
