#!/usr/bin/env bash
# Accuracy acceptance runs: the published recipes on the real datasets, several seeds, mean ± std.
#   bash bench/accuracy.sh [SEEDS]        (default 5; results in bench/results/accuracy/)
# Needs ../shared/datasets beside the repository (or HALO_DATASETS pointing at the datasets).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5}
data=${HALO_DATASETS:-../shared/datasets}
bash scripts/install-deps.sh
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
out=bench/results/accuracy
mkdir -p "$out"

# Kipf & Welling: 2-layer GCN, hidden 16, dropout 0.5 on input and hidden, row-normalised features,
# Adam lr 0.01, weight decay 5e-4, 200 epochs, test accuracy at the best validation epoch.
kipf=(--model gcn --layers 2 --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none --normalize-features
      --lr 0.01 --weight-decay 5e-4 --epochs 200)
# GraphSAGE-mean on Amazon-Photo: 2 layers, hidden 256 (LayerNorm after the hidden layer), dropout 0.5, lr 0.01.
sage=(--model sage --layers 2 --hidden 256 --dropout 0.5 --norm layernorm --lr 0.01 --epochs 200)

for s in $(seq 0 $((seeds - 1))); do
  .build/release/halo train --dataset "$data/cora" "${kipf[@]}" --seed "$s" --quiet --json-out "$out/cora-gcn-$s.json"
  .build/release/halo train --dataset "$data/citeseer" "${kipf[@]}" --seed "$s" --quiet --json-out "$out/citeseer-gcn-$s.json"
  .build/release/halo train --dataset "$data/amazon_photo" "${sage[@]}" --seed "$s" --quiet --json-out "$out/amazon_photo-sage-$s.json"
done

python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
print("| dataset | model | seeds | test acc. at best val (mean ± std) | min | max |")
print("|---|---|---:|---:|---:|---:|")
for name, model in [("cora", "gcn"), ("citeseer", "gcn"), ("amazon_photo", "sage")]:
    accs = [json.load(open(f))["test_accuracy_at_best_val"] for f in sorted(glob.glob(f"{out}/{name}-{model}-*.json"))]
    if not accs:
        continue
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"| {name} | {model} | {len(accs)} | {statistics.mean(accs):.4f} ± {sd:.4f} | {min(accs):.4f} | {max(accs):.4f} |")
PY
