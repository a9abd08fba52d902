#!/usr/bin/env bash
# Compressed gradient all-reduce (--grad-compression bf16|int8, with error feedback) against float32: 4 METIS parts
# (ranks as threads), vanilla halo exchange, 3 seeds, Cora, Amazon-Photo and Coauthor-Physics. Prints test accuracy
# at best validation (mean over seeds, and the per-seed range of the differences) and the gradient all-reduce's bytes
# per epoch (one copy per rank as encoded, summed over the 4 ranks; the metric and loss sums are in it too).
#   bash bench/grad_compression_accuracy.sh [SEEDS] [EPOCHS]     (defaults 3, 200; outputs in bench/results/grad-compression/)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
epochs=${2:-200}
data=${HALO_DATASETS:-../shared/datasets}
out=bench/results/grad-compression
mkdir -p "$out"
bash scripts/install-deps.sh
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
halo=.build/release/halo

declare -A recipe
recipe[cora]="--model gcn --layers 2 --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none --normalize-features --weight-decay 5e-4"
recipe[amazon_photo]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --norm layernorm"
recipe[coauthor_physics]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --norm layernorm"
for ds in cora amazon_photo coauthor_physics; do
  for s in $(seq 0 $((seeds - 1))); do
    for c in none bf16 int8; do
      # shellcheck disable=SC2086
      "$halo" train --dataset "$data/$ds" ${recipe[$ds]} --lr 0.01 --epochs "$epochs" --seed "$s" --parts 4 \
        --grad-compression "$c" --quiet --json-out "$out/$ds-$c-$s.json" >/dev/null
    done
  done
done

python3 - "$out" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
print("| dataset | float32 test acc. | bf16 test acc. | Δ bf16 (points; per seed) | int8 test acc. | Δ int8 (points; per seed) | all-reduce KB/epoch, 4 ranks: float32 / bf16 / int8 |")
print("|---|---:|---:|---|---:|---|---|")
for ds in ["cora", "amazon_photo", "coauthor_physics"]:
    runs = {c: [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{ds}-{c}-*.json"))] for c in ["none", "bf16", "int8"]}
    if not all(runs.values()):
        continue
    acc = {c: [r["test_accuracy_at_best_val"] for r in rs] for c, rs in runs.items()}
    kb = {c: statistics.mean(r["bytes_sent_per_epoch"] - r["halo_bytes_per_epoch"] for r in rs) / 1e3 for c, rs in runs.items()}
    def delta(c):
        d = [100 * (a - b) for a, b in zip(acc[c], acc["none"])]
        return f"{statistics.mean(d):+.2f} ({', '.join(f'{x:+.2f}' for x in d)})"
    m = {c: statistics.mean(v) for c, v in acc.items()}
    print(f"| {ds} | {m['none']:.4f} | {m['bf16']:.4f} | {delta('bf16')} | {m['int8']:.4f} | {delta('int8')} | "
          f"{kb['none']:.0f} / {kb['bf16']:.0f} / {kb['int8']:.0f} |")
PY
