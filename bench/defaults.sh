#!/usr/bin/env bash
# Which defaults serve the standard benchmarks: `halo train`'s defaults (GCN-2, hidden 256, LayerNorm, dropout 0.5,
# lr 0.01, no weight decay) against the same with `--norm none`, and Kipf & Welling's recipe, on the citation and
# co-purchase / co-authorship graphs; several seeds, test score at the best validation epoch.
#   bash bench/defaults.sh [SEEDS]        (default 3; results in bench/results/defaults/)
# Needs ../shared/datasets beside the repository (or HALO_DATASETS pointing at the datasets).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
data=${HALO_DATASETS:-../shared/datasets}
bash scripts/install-deps.sh
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
out=bench/results/defaults
mkdir -p "$out"
datasets=(cora citeseer amazon_photo coauthor_physics)
declare -A variants=(
  [default]=""
  [norm-none]="--norm none"
  [kipf-gcn]="--recipe kipf-gcn"
)
for s in $(seq 0 $((seeds - 1))); do
  for d in "${datasets[@]}"; do
    for v in "${!variants[@]}"; do
      json="$out/$d-$v-$s.json"
      [ -s "$json" ] && continue
      # shellcheck disable=SC2086
      .build/release/halo train --dataset "$data/$d" ${variants[$v]} --seed "$s" --quiet --json-out "$json" >/dev/null
    done
  done
done

python3 - "$out" "${datasets[@]}" <<'PY'
import glob, json, statistics, sys
out, datasets = sys.argv[1], sys.argv[2:]
variants = ["default", "norm-none", "kipf-gcn"]
print("| dataset | " + " | ".join(variants) + " |")
print("|---|" + "---:|" * len(variants))
for d in datasets:
    cells = []
    for v in variants:
        scores = [json.load(open(f))["test_accuracy_at_best_val"] for f in sorted(glob.glob(f"{out}/{d}-{v}-*.json"))]
        if not scores:
            cells.append("–")
            continue
        sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
        cells.append(f"{statistics.mean(scores):.4f} ± {sd:.4f} (n={len(scores)})")
    print(f"| {d} | " + " | ".join(cells) + " |")
PY
