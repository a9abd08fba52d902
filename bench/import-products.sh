#!/usr/bin/env bash
# Measures `halo import ogb` on a products-shaped OGB tree (default: 2.45M nodes, 47 classes, 100 dense features,
# ~50 neighbours per node (61M undirected edges, as ogbn-products), gzip-compressed CSV as OGB ships it): wall time and peak RSS from /usr/bin/time -v.
# Generated data goes to $WORK (default /tmp/halo-import-bench) and is never committed.
#   bench/import-products.sh [synthetic spec]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
spec=${1:-synthetic:nodes=2450000,classes=47,features=100,degree=50,seed=5}
work=${WORK:-/tmp/halo-import-bench}
mkdir -p "$work"
swift build -c release --product halo >/dev/null
halo=.build/release/halo
swiftc -O bench/import/ogb_tree_from_dataset.swift -o "$work/ogb_tree_from_dataset"

rm -rf "$work/direct" "$work/ogbn_synthetic" "$work/imported"
"$halo" generate --dataset "$spec" --out "$work/direct"
"$work/ogb_tree_from_dataset" "$work/direct" "$work/ogbn_synthetic"
find "$work/ogbn_synthetic" -name '*.csv' -exec gzip -6 {} +
du -sh "$work/ogbn_synthetic/raw"/* "$work/ogbn_synthetic/split"

/usr/bin/time -v "$halo" import ogb "$work/ogbn_synthetic" --out "$work/imported" 2> "$work/time.txt"
grep -E "Elapsed|Maximum resident" "$work/time.txt"
lscpu | grep -E "^Model name|^CPU\(s\)"
