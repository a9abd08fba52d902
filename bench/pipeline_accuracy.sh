#!/usr/bin/env bash
# Accuracy acceptance of the pipelined methods: vanilla, pipegcn and pipeqs on 4 METIS parts (ranks as threads),
# the same recipe per dataset for every method, several seeds. Prints test accuracy at best validation
# (mean ± std over seeds), each pipelined method's difference from vanilla in points, and what PipeQS's pipeline did.
#   bash bench/pipeline_accuracy.sh [SEEDS] [EPOCHS]     (defaults 3, 200; outputs in bench/results/pipeline/)
#   METHODS="pipegcn pipeqs" DATASETS="cora,citeseer" bash bench/pipeline_accuracy.sh   # a subset
# Runs whose JSON already exists are skipped, so an interrupted run resumes; delete the JSON to redo one.
# Uses .build/release/halo as it is (builds it only if missing). Needs ../shared/datasets beside the repository
# (or HALO_DATASETS pointing at the datasets).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
epochs=${2:-200}
data=${HALO_DATASETS:-../shared/datasets}
out=bench/results/pipeline
mkdir -p "$out/logs"

halo=.build/release/halo
if [ ! -x "$halo" ]; then
  bash scripts/install-deps.sh
  swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo >/dev/null
fi

# Kipf & Welling on the citation graphs (as bench/accuracy.sh); AdaQP's recipe on the co-purchase and co-author
# graphs (as bench/adaqp_accuracy.sh). Every method gets the same one.
declare -A recipe
recipe[cora]="--model gcn --layers 2 --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none --normalize-features --lr 0.01 --weight-decay 5e-4"
recipe[citeseer]="${recipe[cora]}"
recipe[amazon_photo]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --lr 0.01 --norm layernorm"
recipe[coauthor_physics]="--model gcn --layers 2 --hidden 256 --dropout 0.5 --lr 0.01 --norm layernorm"

# METHODS and DATASETS: space- or comma-separated subsets.
list="${METHODS:-vanilla pipegcn pipeqs}"
read -r -a methods <<< "${list//,/ }"
list="${DATASETS:-cora citeseer amazon_photo coauthor_physics}"
read -r -a datasets <<< "${list//,/ }"
for ds in "${datasets[@]}"; do
  if [ -z "${recipe[$ds]:-}" ]; then
    echo "pipeline_accuracy.sh: no recipe for dataset '$ds' (known: ${!recipe[*]})" >&2
    exit 2
  fi
  [ -d "$data/$ds" ] || { echo "pipeline_accuracy.sh: $data/$ds is missing" >&2; exit 2; }
done

total=$(( ${#datasets[@]} * ${#methods[@]} * seeds ))
i=0
failed=0
t0=$SECONDS
for ds in "${datasets[@]}"; do
  for s in $(seq 0 $((seeds - 1))); do
    for m in "${methods[@]}"; do
      i=$((i + 1))
      name="$ds-$m-e$epochs-s$s"
      json="$out/$name.json"
      if [ -s "$json" ]; then
        continue
      fi
      echo "[$i/$total, $(( (SECONDS - t0) / 60 )) min] $ds $m seed $s" >&2
      # shellcheck disable=SC2086
      if "$halo" train --dataset "$data/$ds" ${recipe[$ds]} --epochs "$epochs" --seed "$s" --parts 4 \
          --partition-method metis --method "$m" --quiet --json-out "$json.tmp" >"$out/logs/$name.log" 2>&1; then
        mv "$json.tmp" "$json"
      else
        echo "  failed (exit $?): see $out/logs/$name.log" >&2
        rm -f "$json.tmp"
        failed=$((failed + 1))
      fi
    done
  done
done

python3 - "$out" "$epochs" "$seeds" <<'PY'
import glob, json, os, statistics, sys
sys.path.insert(0, os.path.join("bench", "harness"))
from report import f_bits, merge_pipeline, pipeline_summary, pipeline_totals  # one definition of the statistics

out, epochs, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 0.5  # points below vanilla's mean that still pass


def runs(ds, m):
    return [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{ds}-{m}-e{epochs}-s*.json"))]


def acc(rs):
    a = [100 * r["test_accuracy_at_best_val"] for r in rs]
    return statistics.mean(a), (statistics.stdev(a) if len(a) > 1 else 0.0), len(a)


def cell(rs, base=None):
    if not rs:
        return "–"
    mu, sd, n = acc(rs)
    notes = ([] if base is None else [f"{mu - base:+.2f}"]) + ([] if n == seeds else [f"n={n}"])
    return f"{mu:.2f} ± {sd:.2f}" + (f" ({', '.join(notes)})" if notes else "")


print(f"Test accuracy at the best validation epoch, % (mean ± std over seeds), 4 METIS parts, {epochs} epochs; "
      "in brackets the difference from vanilla in points.\n")
print("| dataset | vanilla (mean ± std) | pipegcn (mean ± std, diff) | pipeqs (mean ± std, diff) | within 0.5 points? "
      "| pipeqs mean staleness "
      "| pipeqs bypass share | pipeqs bits share |")
print("|---|---:|---:|---:|---|---:|---:|---|")
for ds in ["cora", "citeseer", "amazon_photo", "coauthor_physics"]:
    r = {m: runs(ds, m) for m in ["vanilla", "pipegcn", "pipeqs"]}
    if not any(r.values()):
        continue
    base = acc(r["vanilla"])[0] if r["vanilla"] else None
    within = []
    for m in ["pipegcn", "pipeqs"]:
        if r[m] and base is not None:
            within.append(f"{m} {'✓' if acc(r[m])[0] - base >= -LIMIT else '✗'}")
    p = pipeline_summary(merge_pipeline([pipeline_totals(x["epochs"]) for x in r["pipeqs"]]))
    print(f"| {ds} | {cell(r['vanilla'])} | {cell(r['pipegcn'], base)} | {cell(r['pipeqs'], base)} | "
          f"{', '.join(within) or '–'} | "
          f"{'–' if not p or p['mean_age'] is None else format(p['mean_age'], '.2f')} | "
          f"{'–' if not p or p['bypass_share'] is None else format(100 * p['bypass_share'], '.1f') + '%'} | "
          f"{f_bits(p['bits_share']) if p else '–'} |")
print(f"\nwithin 0.5 points: the method's mean is at most {LIMIT} points below vanilla's (higher passes too). "
      "PipeQS's statistics pool every epoch of every seed, all ranks, layers and directions: mean staleness = mean "
      "age in epochs of the halo blocks used; bypass share = uses of a cached block more than one epoch old "
      "because nothing newer had arrived, ÷ all uses; bits share = messages sent by bit width.")
PY
[ "$failed" = 0 ] || { echo "pipeline_accuracy.sh: $failed run(s) failed" >&2; exit 1; }
