#!/usr/bin/env bash
# AdaQP's accuracy and traffic against vanilla: 4 METIS parts (ranks as threads), 3 seeds, Cora, Amazon-Photo and
# Coauthor-Physics. Prints test accuracy at best validation (mean over seeds) and halo bytes per epoch.
#   bash bench/adaqp_accuracy.sh [SEEDS] [EPOCHS]     (defaults 3, 200; outputs in bench/results/adaqp/)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
epochs=${2:-200}
data=${HALO_DATASETS:-../shared/datasets}
out=bench/results/adaqp
mkdir -p "$out"
bash scripts/install-deps.sh
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
halo=.build/release/halo
cycle=$((epochs / 5))

declare -A recipe
recipe[cora]="--model gcn --layers 2 --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none --normalize-features --weight-decay 5e-4"
recipe[amazon_photo]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --norm layernorm"
recipe[coauthor_physics]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --norm layernorm"
for ds in cora amazon_photo coauthor_physics; do
  for s in $(seq 0 $((seeds - 1))); do
    for m in vanilla adaqp; do
      # shellcheck disable=SC2086
      "$halo" train --dataset "$data/$ds" ${recipe[$ds]} --lr 0.01 --epochs "$epochs" --seed "$s" --parts 4 \
        --method "$m" --assign-cycle "$cycle" --quiet --json-out "$out/$ds-$m-$s.json" >/dev/null
    done
  done
done

python3 - "$out" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
print("| dataset | vanilla test acc. | adaqp test acc. | difference (points) | vanilla halo MB/epoch | adaqp halo MB/epoch | ratio | adaqp bit widths (last cycle, rows) |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for ds in ["cora", "amazon_photo", "coauthor_physics"]:
    runs = {m: [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{ds}-{m}-*.json"))] for m in ["vanilla", "adaqp"]}
    if not runs["vanilla"] or not runs["adaqp"]:
        continue
    acc = {m: statistics.mean(r["test_accuracy_at_best_val"] for r in rs) for m, rs in runs.items()}
    mb = {m: statistics.mean(r["halo_bytes_per_epoch"] for r in rs) / 1e6 for m, rs in runs.items()}
    hist = {}
    for r in runs["adaqp"]:
        cyc = r.get("assignment_cycles") or []
        if cyc:
            for site in cyc[-1]["sites"]:
                for b, n in site["rows_by_bits"].items():
                    hist[b] = hist.get(b, 0) + n
    widths = ", ".join(f"{b}-bit {n}" for b, n in sorted(hist.items(), key=lambda kv: int(kv[0])))
    print(f"| {ds} | {acc['vanilla']:.4f} | {acc['adaqp']:.4f} | {100 * (acc['adaqp'] - acc['vanilla']):+.2f} | "
          f"{mb['vanilla']:.2f} | {mb['adaqp']:.2f} | 1/{mb['vanilla'] / max(mb['adaqp'], 1e-12):.1f} | {widths} |")
PY
