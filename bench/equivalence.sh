#!/usr/bin/env bash
# The distributed invariant on real data, in release builds: vanilla training on 4 METIS parts, with ranks as
# threads and as MPI processes, against one process. Prints, per dataset and transport, the largest relative
# per-epoch loss difference and the largest accuracy difference; also times `halo partition` on a 1M-node graph.
#   bash bench/equivalence.sh [EPOCHS]     (default 50; outputs in bench/results/equivalence/)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-50}
data=${HALO_DATASETS:-../shared/datasets}
out=bench/results/equivalence
mkdir -p "$out"
bash scripts/install-deps.sh
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
halo=.build/release/halo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

model=(--model gcn --layers 2 --hidden 64 --dropout 0.5 --input-dropout 0.2 --lr 0.01 --epochs "$epochs" --seed 3 --quiet)
declare -A datasets=([cora]="$data/cora" [amazon_photo]="$data/amazon_photo"
                     [synthetic]="synthetic:nodes=50000,classes=8,features=64,degree=16,seed=1")
for name in cora amazon_photo synthetic; do
  ds=${datasets[$name]}
  "$halo" train --dataset "$ds" "${model[@]}" --threads 1 --json-out "$out/$name-single.json"
  "$halo" train --dataset "$ds" "${model[@]}" --parts 4 --json-out "$out/$name-local4.json"
  mpirun --oversubscribe --bind-to none -np 4 "$halo" train --transport mpi --dataset "$ds" "${model[@]}" \
    --threads 1 --json-out "$out/$name-mpi4.json"
done

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| dataset | transport, ranks | max relative loss difference | max accuracy difference | final test acc. (1 process / distributed) |")
print("|---|---|---:|---:|---|")
for name in ["cora", "amazon_photo", "synthetic"]:
    ref = json.load(open(f"{out}/{name}-single.json"))
    for tag, label in [("local4", "threads, 4"), ("mpi4", "MPI, 4")]:
        run = json.load(open(f"{out}/{name}-{tag}.json"))
        dl = max(abs(a["loss"] - b["loss"]) / max(1.0, abs(a["loss"])) for a, b in zip(ref["epochs"], run["epochs"]))
        da = max(abs((a.get(k) or 0) - (b.get(k) or 0)) for a, b in zip(ref["epochs"], run["epochs"])
                 for k in ("train_acc", "val_acc", "test_acc"))
        print(f"| {name} | {label} | {dl:.2e} | {da:.4f} | {ref['final_test_accuracy']:.4f} / {run['final_test_accuracy']:.4f} |")
PY

echo
/usr/bin/time -f "partition of 1M nodes: %e s wall, %M KiB peak" \
  "$halo" partition --dataset synthetic:nodes=1000000,degree=16,seed=1 --parts 4 --out "$out/parts-1m" | tail -n 8
rm -rf "$out/parts-1m"
