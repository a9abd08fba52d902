#!/usr/bin/env bash
# Renders `halo report` of real runs in headless Chromium and saves a screenshot, to look at the page as a browser
# draws it (offline: file:// and no network access needed).
#   bash bench/report_screenshot.sh [OUT_DIR]      (default bench/results/report; HALO=path/to/halo to skip the build)
# Trains vanilla, adaqp and pipeqs on Cora with 2 parts for 30 epochs (Kipf & Welling's GCN), writing each run's
# JSON and TensorBoard events, then the report page and, where `chromium` is installed, OUT_DIR/report.png.
# Needs ../shared/datasets beside the repository (or HALO_DATASETS pointing at the datasets).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/report}
data=${HALO_DATASETS:-../shared/datasets}
if [ ! -d "$data/cora" ]; then
  echo "report_screenshot: $data/cora not found; set HALO_DATASETS" >&2
  exit 1
fi
if [ -z "${HALO:-}" ]; then
  [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
  swift build -c release --product halo >/dev/null
  HALO=.build/release/halo
fi
mkdir -p "$out"

kipf=(--model gcn --layers 2 --hidden 16 --dropout 0.5 --input-dropout 0.5 --norm none --normalize-features
      --lr 0.01 --weight-decay 5e-4)
for method in vanilla adaqp pipeqs; do
  # AdaQP re-assigns bit widths every 10 epochs, so 30 epochs show two assignment cycles.
  "$HALO" train --dataset "$data/cora" "${kipf[@]}" --parts 2 --epochs 30 --method "$method" --assign-cycle 10 \
    --quiet --json-out "$out/$method.json" --tensorboard "$out/tensorboard/$method"
done
"$HALO" report "$out/vanilla.json" "$out/adaqp.json" "$out/pipeqs.json" --out "$out/report.html"

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report_screenshot: chromium is not installed; skipping the screenshot (apt-get install chromium)." \
       "The page is $out/report.html."
  exit 0
fi
page="file://$(cd "$out" && pwd)/report.html"
# --no-sandbox: the sandbox needs user namespaces that containers and root sessions often lack.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,3400 \
  --screenshot="$out/report.png" "$page" 2>/dev/null
echo "report_screenshot: wrote $out/report.png (from $page)"
