"""Turns the raw JSON results of a benchmark run into docs/benchmarks.md and its SVG plots.

Everything in the generated document comes from the results directory (and the fixed explanatory text
below); rerunning `python3 bench/harness/bench.py --report-only` regenerates it byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import svg
from common import (PIPELINED, REPO, ablation_groups, mean, median, mn, mx, parse_variant, read_json,
                    variant_flags, write_json)

COMPONENTS = [("compute_s", "compute"), ("quantize_s", "quantize"), ("comm_wait_s", "comm wait"),
              ("allreduce_s", "all-reduce")]
VARIANT_COLORS = {"vanilla": "#7f7f7f", "adaqp-p": "#4e79a7", "adaqp-q": "#f28e2b", "adaqp": "#e15759",
                  "pipegcn": "#59a14f", "pipeqs": "#b07aa1"}
EXTRA_COLORS = ["#76b7b2", "#edc948", "#9c755f", "#ff9da7"]
# PipeQS's acceptance, in cells where vanilla waits for halo messages more than COMM_BOUND of its epoch:
# throughput at least AdaQP's and a halo wait at most WAIT_TARGET of vanilla's.
COMM_BOUND = 0.5
WAIT_TARGET = 0.10


def cap_label(cap: str) -> str:
    c = cap.lower()
    for unit, name in (("gbit", "Gbit/s"), ("mbit", "Mbit/s"), ("kbit", "kbit/s")):
        if c.endswith(unit):
            return f"{c[:-len(unit)]} {name}"
    return cap


def cap_nominal_bytes(cap: str) -> float:
    c = cap.lower()
    for unit, mult in (("gbit", 1e9 / 8), ("mbit", 1e6 / 8), ("kbit", 1e3 / 8)):
        if c.endswith(unit):
            return float(c[:-len(unit)]) * mult
    raise ValueError(cap)


def rel(s: str) -> str:
    """Repository-relative paths in commands shown to the reader."""
    return s.replace(str(REPO) + "/", "")


def f_ms(x) -> str:
    return "–" if x is None else f"{1000 * x:.0f}" if x >= 0.1 else f"{1000 * x:.1f}"


def f_num(x, fmt="{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def f_pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def f_mb(x) -> str:
    return "–" if x is None else f"{x / 1e6:.2f}"


# ------------------------------------------------------------------------------------------- per-run metrics

def run_metrics(report: dict, target: float | None = None) -> dict:
    epochs = report["epochs"]
    steady = epochs[1:] if len(epochs) > 1 else epochs
    m = {"epoch_median_s": median([e["time_s"] for e in steady])}
    m["throughput"] = 1.0 / m["epoch_median_s"] if m["epoch_median_s"] else None
    for key, _ in COMPONENTS:
        m[key] = median([e.get(key, 0.0) for e in steady])
    m["hidden_fraction"] = median([e.get("comm_hidden_fraction") for e in steady])
    # The gradient all-reduce's span, first layer's bucket started to last completed (runs before per-layer
    # buckets have none).
    spans = [e.get("grad_allreduce_span_s") for e in steady]
    m["allreduce_span_s"] = median(spans) if all(s is not None for s in spans) else None
    # The rank that reaches the sums last waits only for what they still had to send: the all-reduce's own exposed
    # time, without the other ranks' wait for it (load imbalance). Runs before per-rank times have none.
    by_rank = [e.get("allreduce_s_by_rank") for e in steady]
    m["allreduce_last_rank_s"] = median([min(r) for r in by_rank]) if all(by_rank) else None
    cum, curve = 0.0, []
    for e in epochs:
        cum += e["time_s"]
        if e.get("val_acc") is not None:
            curve.append((e["epoch"], cum, e["val_acc"]))
    m["curve"] = curve
    m["total_train_s"] = cum
    m["halo_bytes"] = report.get("halo_bytes_per_epoch")
    m["bytes_sent"] = report.get("bytes_sent_per_epoch")
    m["best_val"] = report.get("best_val_accuracy")
    m["test_at_best_val"] = report.get("test_accuracy_at_best_val")
    m["final_test"] = report.get("final_test_accuracy")
    cycles = report.get("assignment_cycles")
    m["cycles"] = None if cycles is None else 1 + len(cycles)
    m["mean_bits"] = None
    if cycles:
        rows = bits = 0
        for site in cycles[-1].get("sites", []):
            for b, n in site.get("rows_by_bits", {}).items():
                rows += n
                bits += int(b) * n
        m["mean_bits"] = bits / rows if rows else None
    m["link_probe_s"] = report.get("link_probe_s")
    m["pipe"] = pipeline_totals(epochs)
    if target is not None:
        m["tta_s"] = time_to_accuracy(curve, target)
    return m


def time_to_accuracy(curve, target):
    for _, t, v in curve:
        if v >= target - 1e-12:
            return t
    return None


# ------------------------------------------------------------------------------------ pipelined methods

def pipeline_totals(epochs) -> dict | None:
    """The per-epoch `pipeline` records of a pipelined run (every layer and direction, summed over ranks), summed
    over all its epochs, the first included; None for the other methods."""
    t = None
    for e in epochs:
        for site in e.get("pipeline") or []:
            if t is None:
                t = {"runs": 1, "ages": {}, "older": 0, "bound": None, "zero": 0, "bypasses": 0, "waits": 0,
                     "bits": {}, "skipped": 0, "drift_sum": 0.0, "drift_n": 0, "wait_s": 0.0}
            ages = site.get("block_ages") or []
            if ages:
                # ages 0 … S, then one bucket for blocks older than the bound S
                t["bound"] = max(t["bound"] or 0, len(ages) - 2)
                for a, n in enumerate(ages[:-1]):
                    t["ages"][a] = t["ages"].get(a, 0) + n
                t["older"] += ages[-1]
            t["zero"] += site.get("zero_blocks", 0)
            t["bypasses"] += site.get("bypasses", 0)
            t["waits"] += site.get("waits", 0)
            for b, n in (site.get("messages_by_bits") or {}).items():
                t["bits"][str(b)] = t["bits"].get(str(b), 0) + n
            t["skipped"] += site.get("skipped_sends", 0)
            if site.get("mean_drift") is not None:
                t["drift_sum"] += site["mean_drift"]
                t["drift_n"] += 1
            t["wait_s"] += site.get("wait_s") or 0.0
    return t


def merge_pipeline(totals: list) -> dict | None:
    """Pools the totals of several runs (a cell's repetitions)."""
    totals = [t for t in totals if t]
    if not totals:
        return None
    m = {"runs": 0, "ages": {}, "older": 0, "bound": None, "zero": 0, "bypasses": 0, "waits": 0, "bits": {},
         "skipped": 0, "drift_sum": 0.0, "drift_n": 0, "wait_s": 0.0}
    for t in totals:
        for k in ("runs", "older", "zero", "bypasses", "waits", "skipped", "drift_sum", "drift_n", "wait_s"):
            m[k] += t[k]
        if t["bound"] is not None:
            m["bound"] = max(m["bound"] or 0, t["bound"])
        for key in ("ages", "bits"):
            for k, n in t[key].items():
                m[key][k] = m[key].get(k, 0) + n
    return m


def pipeline_summary(t: dict | None) -> dict | None:
    """Shares and means of pooled totals. mean_age: mean age in epochs of the blocks used (zero blocks excluded;
    a block older than the bound counts as bound + 1, a lower bound, and shows in `older`)."""
    if not t:
        return None
    aged = sum(t["ages"].values()) + t["older"]
    uses = aged + t["zero"]
    sent = sum(t["bits"].values())
    age_sum = sum(a * n for a, n in t["ages"].items()) + ((t["bound"] or 0) + 1) * t["older"]
    used_ages = [a for a, n in t["ages"].items() if n > 0]
    return {"runs": t["runs"], "uses": uses, "bound": t["bound"],
            "mean_age": age_sum / aged if aged else None,
            "max_age": max(used_ages) if used_ages else None, "older": t["older"],
            "zero_share": t["zero"] / uses if uses else None,
            "bypass_share": t["bypasses"] / uses if uses else None,
            "wait_share": t["waits"] / uses if uses else None,
            "messages": sent, "bits_share": {b: n / sent for b, n in t["bits"].items()} if sent else {},
            "mean_bits": sum(int(b) * n for b, n in t["bits"].items()) / sent if sent else None,
            "skipped": t["skipped"],
            "skipped_share": t["skipped"] / (sent + t["skipped"]) if sent + t["skipped"] else None,
            "mean_drift": t["drift_sum"] / t["drift_n"] if t["drift_n"] else None}


def f_bits(shares: dict) -> str:
    if not shares:
        return "–"
    return " · ".join(f"{b} b {100 * x:.0f}%" for b, x in sorted(shares.items(), key=lambda kv: int(kv[0])))


# ----------------------------------------------------------------------------------------------- loading

class Results:
    def __init__(self, out: Path):
        self.out = out
        self.env = read_json(out / "env.json")
        self.cfg = self.env["config"]
        self.partitions = read_json(out / "partitions.json") if (out / "partitions.json").exists() else {}
        self.caps = read_json(out / "caps.json") if (out / "caps.json").exists() else {}
        self.micro = read_json(out / "microbench.json") if (out / "microbench.json").exists() else None
        self.runs = []
        for p in sorted((out / "runs").glob("*.json")):
            if p.name.endswith(".halo.json"):
                continue
            d = read_json(p)
            self.runs.append(d)
        self.peer = [read_json(p) for p in sorted((out / "peer").glob("*.json"))] if (out / "peer").exists() else []
        self.datasets = [d["name"] for d in self.cfg["datasets"]]
        self.ds_cfg = {d["name"]: d for d in self.cfg["datasets"]}
        self.variants = list(self.cfg["variants"])
        self.ablation_variants = []
        for g in ablation_groups(self.cfg):
            self.ablation_variants += [v for v in g.get("variants", [])
                                       if v not in self.variants and v not in self.ablation_variants]
        self.pipelined = [v for v in self.variants + self.ablation_variants
                          if v.partition("/")[0] in PIPELINED]
        self.parts = self.cfg["parts"]
        self.cap_list = self.cfg["caps"]
        self.ok = [r for r in self.runs if r["report"] is not None]
        self.failed = [r for r in self.runs if r["report"] is None]
        # Target per dataset: a fraction of vanilla's best validation accuracy (median over all vanilla runs).
        self.target, self.vanilla_best = {}, {}
        for ds in self.datasets:
            best = median([r["report"].get("best_val_accuracy") for r in self.ok
                           if r["bench"]["dataset"] == ds and r["bench"]["variant"] == "vanilla"])
            self.vanilla_best[ds] = best
            self.target[ds] = None if best is None else self.cfg["target_fraction"] * best
        for r in self.ok:
            r["m"] = run_metrics(r["report"], self.target.get(r["bench"]["dataset"]))

    def cap_bytes_per_s(self, cap):
        c = self.caps.get(cap)
        if c and c.get("mbit_s"):
            return c["mbit_s"] * 1e6 / 8, True
        return cap_nominal_bytes(cap), False

    def cell_runs(self, ds, P, cap, variant):
        return [r for r in self.ok if r["bench"]["dataset"] == ds and r["bench"]["parts"] == P
                and r["bench"]["cap"] == cap and r["bench"]["variant"] == variant]

    def cell(self, ds, P, cap, variant):
        rs = self.cell_runs(ds, P, cap, variant)
        if not rs:
            return None
        ms = [r["m"] for r in rs]
        c = {"n": len(rs), "reps": {r["bench"]["rep"]: r for r in rs}}
        thr = [m["throughput"] for m in ms]
        c.update(thr_min=mn(thr), thr_med=median(thr), thr_max=mx(thr))
        keys = ("epoch_median_s", "hidden_fraction", "halo_bytes", "bytes_sent", "best_val", "test_at_best_val",
                "final_test", "cycles", "mean_bits", "total_train_s", "link_probe_s", "allreduce_span_s",
                "allreduce_last_rank_s")
        for k in keys + tuple(k for k, _ in COMPONENTS):
            c[k] = median([m.get(k) for m in ms])
        c["pipe"] = pipeline_summary(merge_pipeline([m.get("pipe") for m in ms]))
        tta = [m.get("tta_s") for m in ms]
        c["tta_reached"] = sum(1 for t in tta if t is not None)
        c["tta_med"] = median(tta)
        c["other_cores"] = mean([r["bench"].get("other_cpu_cores") for r in rs])
        c["load1"] = mean([r["bench"].get("load1_start") for r in rs])
        # Roofline floor: the larger of the compute this rank must do and its wire time.
        Bps, measured = self.cap_bytes_per_s(cap)
        compute = (c["compute_s"] or 0) + (c["quantize_s"] or 0)
        wire = (c["bytes_sent"] or 0) / P / Bps
        c["floor_compute_s"], c["floor_wire_s"] = compute, wire
        c["floor_s"] = max(compute, wire)
        c["floor_bound"] = "wire" if wire >= compute else "compute"
        c["vs_floor"] = c["epoch_median_s"] / c["floor_s"] if c["floor_s"] else None
        return c

    def speedup(self, ds, P, cap, variant, base="vanilla"):
        """Median throughput ÷ the base variant's, and the range of the ratios paired by repetition."""
        a, b = self.cell(ds, P, cap, variant), self.cell(ds, P, cap, base)
        if not a or not b or not a["thr_med"] or not b["thr_med"]:
            return None, None, None
        paired = []
        for rep, r in a["reps"].items():
            v = b["reps"].get(rep)
            if v:
                paired.append(r["m"]["throughput"] / v["m"]["throughput"])
        return a["thr_med"] / b["thr_med"], mn(paired), mx(paired)


# ------------------------------------------------------------------------------------------------- plots

def variant_color(v, extras):
    if v in VARIANT_COLORS:
        return VARIANT_COLORS[v]
    return EXTRA_COLORS[extras.index(v) % len(EXTRA_COLORS)] if v in extras else "#333"


def make_plots(R: Results, svg_dir: Path) -> dict:
    svg_dir.mkdir(parents=True, exist_ok=True)
    for old in svg_dir.glob("*.svg"):
        old.unlink()
    files = {}
    xl = [cap_label(c) for c in R.cap_list]
    for ds in R.datasets:
        label = R.ds_cfg[ds]["label"]
        series = []
        for v in R.variants:
            for k, P in enumerate(R.parts):
                cells = [R.cell(ds, P, cap, v) for cap in R.cap_list]
                series.append({"label": f"{v}, P={P}", "color": VARIANT_COLORS.get(v, "#333"),
                               "dash": None if k == 0 else ("6,4" if k == 1 else "2,3"),
                               "values": [c["thr_med"] if c else None for c in cells],
                               "lo": [c["thr_min"] if c else None for c in cells],
                               "hi": [c["thr_max"] if c else None for c in cells]})
        name = f"throughput-{ds}.svg"
        (svg_dir / name).write_text(svg.line_chart(
            f"{label}: training throughput vs link cap (median, whiskers min–max)", xl, series,
            "epochs / s", "per-host link cap (tbf, each direction)", log_y=True))
        files[("throughput", ds)] = name

        groups = [f"P={P}\n{cap_label(cap)}" for P in R.parts for cap in R.cap_list]
        bars = [v for v in R.variants if v != "vanilla"]
        vals = [[R.speedup(ds, P, cap, v)[0] for v in bars] for P in R.parts for cap in R.cap_list]
        name = f"speedup-{ds}.svg"
        (svg_dir / name).write_text(svg.grouped_bar_chart(
            f"{label}: speed-up over vanilla (median throughput ratio)", groups, bars, vals,
            "× vanilla throughput", reference=1.0, value_fmt="{:.2f}",
            colors=[VARIANT_COLORS.get(v, "#333") for v in bars]))
        files[("speedup", ds)] = name

        groups = [f"P={P}, {cap_label(cap)}" for P in R.parts for cap in R.cap_list]
        vals = []
        for P in R.parts:
            for cap in R.cap_list:
                row = []
                for v in R.variants:
                    c = R.cell(ds, P, cap, v)
                    row.append(None if c is None else [1000 * (c[k] or 0) for k, _ in COMPONENTS])
                vals.append(row)
        name = f"breakdown-{ds}.svg"
        (svg_dir / name).write_text(svg.stacked_bar_chart(
            f"{label}: where an epoch goes (rank 0, medians)", groups, R.variants, [n for _, n in COMPONENTS],
            vals, "ms per epoch", colors=["#59a14f", "#edc948", "#e15759", "#4e79a7"]))
        files[("breakdown", ds)] = name

    samples = R.env.get("load_samples") or []
    if len(samples) > 1:
        name = "load-average.svg"
        (svg_dir / name).write_text(svg.time_series(
            "1-minute load average during the run (benchmark's own ranks included)",
            [t / 60 for t, _ in samples], [l for _, l in samples], "minutes into the run", "load average",
            hline=R.env["machine"].get("cores"), hline_label="cores"))
        files[("load", None)] = name

    # One headline figure: AdaQP's speed-up for every dataset and cell.
    if "adaqp" in R.variants:
        combos = [(P, cap) for P in R.parts for cap in R.cap_list]
        vals = [[R.speedup(ds, P, cap, "adaqp")[0] for P, cap in combos] for ds in R.datasets]
        name = "speedup-adaqp.svg"
        (svg_dir / name).write_text(svg.grouped_bar_chart(
            "AdaQP speed-up over vanilla, every dataset and cell", [R.ds_cfg[d]["label"] for d in R.datasets],
            [f"P={P}, {cap_label(cap)}" for P, cap in combos], vals, "× vanilla throughput", reference=1.0,
            colors=["#f1a340", "#d95f02", "#92c5de", "#2166ac", "#66c2a5", "#1b9e77"]))
        files[("headline", None)] = name
    return files


# ------------------------------------------------------------------------------------------------ markdown

def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_tta(c, total_reps):
    if c is None:
        return "–"
    if c["tta_reached"] == 0:
        return "not reached"
    s = f"{c['tta_med']:.1f} s"
    if c["tta_reached"] < c["n"]:
        s += f" ({c['tta_reached']}/{c['n']} reached)"
    return s


def generate(out: Path, doc: Path, svg_dir: Path) -> str:
    R = Results(out)
    files = make_plots(R, svg_dir)
    svg_rel = os.path.relpath(svg_dir, doc.parent)
    cfg, env, mach = R.cfg, R.env, R.env["machine"]
    L: list[str] = []
    w = L.append

    quick = cfg.get("name") == "quick"
    w("# Benchmarks: distributed training over emulated links\n")
    w(f"<!-- generated by bench/harness/report.py from {rel(str(out))}; do not edit by hand -->\n")
    if quick:
        w("> **Smoke run (`--quick`)**: few epochs and one repetition; the numbers only show that the harness "
          "works. Run `bash bench/bench.sh` for the real matrix.\n")
    wall = env.get("wall_s")
    total = env.get("bench_sh_wall_s") or wall
    w(f"Generated by `{env.get('invocation', 'bash bench/bench.sh')}` on {env.get('started', '?')} "
      f"(commit `{mach.get('git_commit', '?')}`"
      + (f", {mach['git_dirty_files']} tracked files modified" if mach.get("git_dirty_files") else "")
      + f"). The whole run took **{total / 60:.1f} min**" + (
          f" ({wall / 60:.1f} min of measurements after installing dependencies and building)"
          if env.get("bench_sh_wall_s") and wall else "") + ". Every number and plot below is generated from "
      f"the JSON files in `{rel(str(out))}/` (git-ignored) by `bench/harness/report.py`.\n")

    mstat = env.get("matrix") or {}
    if mstat.get("truncated"):
        w(f"> **Time budget**: the matrix stopped after {mstat['completed_repetitions']} of {cfg['repetitions']} "
          f"repetitions ({mstat.get('reason', '')}); statistics are over the repetitions that ran.\n")
    if R.failed:
        w(f"> **{len(R.failed)} run(s) failed** and are excluded; see [Failed runs](#failed-runs).\n")

    # ---------------------------------------------------------------- headline
    w("## Headline\n")
    if "adaqp" in R.variants:
        rows = []
        for ds in R.datasets:
            for P in R.parts:
                for cap in R.cap_list:
                    a, v = R.cell(ds, P, cap, "adaqp"), R.cell(ds, P, cap, "vanilla")
                    if not a or not v:
                        continue
                    s, lo, hi = R.speedup(ds, P, cap, "adaqp")
                    share = ((v["comm_wait_s"] or 0) + (v["allreduce_s"] or 0)) / v["epoch_median_s"]
                    rows.append([R.ds_cfg[ds]["label"], str(P), cap_label(cap), f_pct(share), f_num(v["thr_med"]),
                                 f_num(a["thr_med"]), f"**{s:.2f}×** ({lo:.2f}–{hi:.2f})",
                                 f_num(a["halo_bytes"] / v["halo_bytes"] if v["halo_bytes"] else None, "{:.2f}"),
                                 f_num(None if a["test_at_best_val"] is None or v["test_at_best_val"] is None
                                       else 100 * (a["test_at_best_val"] - v["test_at_best_val"]), "{:+.2f}"),
                                 fmt_tta(v, R.cfg["repetitions"]), fmt_tta(a, R.cfg["repetitions"])])
        w("AdaQP (quantized, adaptive bit widths, overlapped) against vanilla (fp32, synchronous), same parts, "
          "same link cap. Speed-up: ratio of median throughputs (in brackets the range of the per-repetition "
          "ratios, each AdaQP run paired with the vanilla run of the same repetition, which ran minutes apart on "
          "the same emulated cluster). Bytes: halo bytes per epoch, AdaQP ÷ vanilla. Δ test: test accuracy at "
          "the best validation epoch, AdaQP − vanilla, percentage points (medians). Time to accuracy: training "
          "time until validation accuracy first reaches "
          f"{100 * cfg['target_fraction']:.0f}% of vanilla's best (see below). Vanilla comm. share: halo wait + "
          "all-reduce as a fraction of vanilla's epoch (rank 0) — how communication-bound the cell is.\n")
        w(md_table(["dataset", "P", "cap", "vanilla comm. share", "vanilla ep/s", "AdaQP ep/s", "speed-up",
                    "bytes ratio", "Δ test (pp)", "vanilla time-to-acc.", "AdaQP time-to-acc."], rows, "lrlrrrrrrrr"))
        w("")
        if ("headline", None) in files:
            w(f"![AdaQP speed-up]({svg_rel}/{files[('headline', None)]})\n")
        notes = diagnosis(R)
        if notes:
            w("**Where AdaQP falls short, and why** (generated from the epoch breakdowns below):\n")
            for n in notes:
                w(f"- {n}")
            w("")
        overlap = overlap_notes(R)
        if overlap:
            w("**Overlap alone (`adaqp-p`)**: " + overlap + "\n")
        ar = allreduce_rows(R)
        if ar:
            w("**The gradient all-reduce against its wire time** (vanilla, medians). AdaQP leaves the all-reduce "
              "alone, so where it is large it bounds every method's speed-up. Each layer's gradients start their "
              "sum as soon as the backward pass has finished the layer (the first layer's weight in pieces of rows "
              "where the host's calibration finds that pays); *exposed* is the time rank 0 was blocked on "
              "all-reduces (gradient and loss), *last rank* the same for the rank that reached the sums last (no "
              "waiting for slower ranks in it), *span* the gradient reduction from its first bucket's start to its "
              "last one's completion (the first layer, finished last, holds most of the bytes). Wire time = the "
              "gradient bytes one rank contributes ÷ the measured link rate; the measured times also contain "
              "waiting for the slowest rank to arrive (load imbalance, the shared cores) and the collective "
              "algorithm's extra steps; below 1× the message left within `tbf`'s burst (10 ms of traffic at the "
              "cap):\n")
            w(md_table(["dataset", "P", "cap", "gradient MB/rank", "exposed all-reduce ms", "last rank ms", "span ms",
                        "wire ms", "exposed ÷ wire", "share of epoch"], ar, "lrlrrrrrrr"))
            w("")

    # ---------------------------------------------------------------- pipelined methods
    if R.pipelined:
        L.extend(pipeline_section(R))

    # ---------------------------------------------------------------- machine
    w("## Machine and load\n")
    load = env.get("load", {})
    cpu = mach.get("cpu_model", "?")
    if mach.get("cpu_family"):
        cpu += f", family {mach['cpu_family']} model {mach.get('cpu_model_number', '?')}"
    if mach.get("hypervisor_vendor"):
        cpu += f" ({mach['hypervisor_vendor']} guest)"
    rows = [["CPU", cpu],
            ["vector ISA", mach.get("vector_isa", "not recorded (runs before this field)")],
            ["cores", str(mach.get("cores"))],
            ["memory", f"{mach.get('memory_gib')} GiB"],
            ["kernel", mach.get("kernel", "?")],
            ["OS", mach.get("os", "?")],
            ["OpenBLAS kernels", ", ".join(sorted(set(
                ([R.micro["report"]["blas_core"]] if R.micro and R.micro.get("report") else [])
                + [r["report"]["environment"]["blas_core"] for r in R.ok]))) or "?"],
            ["Swift", mach.get("swift", "?")],
            ["halo binary", f"`{env.get('halo_binary', {}).get('path', '?')}` (sha256 "
                            f"{env.get('halo_binary', {}).get('sha256', '?')[:16]}…), a copy of the release build "
                            "taken right after `swift build`, used for every run"],
            ["OpenMPI", mach.get("openmpi", "?")],
            ["load average (1 min) during the run",
             f"median {load.get('median', 0):.2f}, min {load.get('min', 0):.2f}, max {load.get('max', 0):.2f} "
             f"({load.get('samples', 0)} samples every {load.get('period_s', 0):.0f} s; includes the benchmark's "
             "own ranks)"],
            ["cores kept busy by other jobs",
             f"{env.get('other_cpu_cores', 0):.2f} of {mach.get('cores')} on average over the run "
             "(machine-wide busy CPU time from /proc/stat minus the benchmark's own, from "
             + ("a cpuacct cgroup holding every process it starts" if env.get("own_cpu_accounting") == "cgroup"
                else "getrusage") + "; approximate: tick-sampled against exact accounting, clamped at 0 per run)"]]
    w(md_table(["", ""], rows, "ll"))
    w("")
    w("This machine is shared with other engineers' jobs; the load above is real noise in every timing. The "
      "harness interleaves the methods (order rotated per repetition) so that noise spreads over all of them, "
      "reports min/median/max over repetitions, and records the foreign load of every run "
      f"(`other_cpu_cores` in `{rel(str(out))}/runs/*.json`).\n")
    if ("load", None) in files:
        w(f"![load average during the run]({svg_rel}/{files[('load', None)]})\n")

    # ---------------------------------------------------------------- commands
    w("## How it was run\n")
    w("```sh")
    w(env.get("invocation", "bash bench/bench.sh"))
    w("```\n")
    w("`bench/bench.sh` installs the Debian packages (`scripts/install-deps.sh`), builds "
      "`swift build -c release -Xswiftc -target-cpu -Xswiftc native --product halo`, creates the PyG venv "
      "(`bench/setup_pyg_venv.sh`) and runs `bench/harness/bench.py`, which does the following "
      f"(configuration `{env.get('config_path', '?')}`, reproduced at the end).\n")
    ex = next((r for r in R.ok if r["bench"]["variant"] == "adaqp"), R.ok[0] if R.ok else None)
    hb = env.get("halo_binary", {}).get("path", ".build/release/halo")

    def with_bin(cmd):
        return hb + cmd[len("halo"):] if cmd.startswith("halo ") else cmd
    w("1. Partition every dataset once per part count into `bench/results/bench-parts/` (METIS for the real "
      "graphs, random for the synthetic one so that its cut is large), e.g.\n")
    w("   ```sh")
    shown = []
    for p in list(R.partitions.values())[:1] + [p for p in R.partitions.values() if p["method"] == "random"][:1]:
        if p["command"] not in shown:
            shown.append(p["command"])
            w("   " + with_bin(rel(p["command"])))
    w("   ```")
    if R.micro:
        w("1. Kernel roofline: `" + with_bin(rel(R.micro["bench"]["command"])) + "`.")
    peer_cmds = {}
    for p in R.peer:
        peer_cmds.setdefault(p["bench"]["framework"], rel(p["bench"]["command"]))
    if peer_cmds:
        w(f"1. Peer comparison, single process, {R.cfg['peer'].get('threads', 2)} threads each, the two frameworks "
          "alternating, per real dataset:\n")
        w("   ```sh")
        for fw in ("halo", "pyg"):
            if fw in peer_cmds:
                w("   " + (f"OMP_NUM_THREADS={R.cfg['peer'].get('threads', 2)} .build-pyg-venv/bin/" + peer_cmds[fw]
                             if fw == "pyg" else with_bin(peer_cmds[fw])))
        w("   ```")
    w("1. The distributed matrix. For every repetition, part count P and cap: bring up P emulated hosts with "
      "each host's link capped in both directions (`scripts/netns/cluster.sh up P --rate CAP`), run every "
      "dataset × method on them, take them down (`scripts/netns/cluster.sh down`, also on failure or interrupt). "
      "The cluster is brought up once per (repetition, P, cap) rather than once per cell: `tbf` keeps no state "
      "between jobs, so this only saves the set-up time. The first time a cap is used its rate is measured with "
      "`scripts/netns/cluster.sh measure 0 1` in both directions. One cell, e.g.\n")
    w("   ```sh")
    if ex:
        w("   " + rel(ex["bench"]["command"]))
    w("   ```")
    w("   Each rank is a single-threaded process (`--threads 1`): the emulated hosts share this machine's "
      f"{mach.get('cores')} cores. Seeds: repetition r uses `--seed r` for every method. Within a (repetition, P, "
      "cap) group the order of the methods rotates with the repetition.")
    named = [v for v in R.variants + R.ablation_variants if "/" in v]
    if named:
        w("   Variants with options add flags (table `VARIANT_OPTIONS` in `bench/harness/common.py`): "
          + "; ".join(f"`{v}` → `{' '.join(variant_flags(parse_variant(v)))}`" for v in named) + ".")
    for g in ablation_groups(cfg):
        w(f"   Ablations {', '.join(f'`{v}`' for v in g.get('variants', []))} run after the main methods on "
          f"{', '.join(R.ds_cfg[d]['label'] if d in R.ds_cfg else d for d in g.get('datasets', []))}, "
          f"P = {', '.join(str(x) for x in g.get('parts', []))}, "
          f"{', '.join(cap_label(c) for c in g.get('caps', []))}, "
          + ("in the first repetition." if g.get("repetitions", 1) == 1
             else f"in the first {g.get('repetitions', 1)} repetitions."))
    w(f"1. This document: `{env.get('invocation', 'bash bench/bench.sh')} --report-only` regenerates it from the "
      "JSON files without measuring anything.")
    w("")

    m = cfg["model"]
    w(f"**Model** (every run): {m['model'].upper()}, {m['layers']} layers, hidden {m['hidden']}, dropout "
      f"{m['dropout']}, no normalisation layer (`--norm {m['norm']}`, as the PyG peer), Adam lr {m['lr']}, weight "
      f"decay {m['weight_decay']}. AdaQP re-assigns bit widths every `--assign-cycle` epochs (the first cycle runs "
      "at 8 bits while variance is traced), chosen for about five cycles per run. The epoch counts (table "
      "below) are cut so that the whole default matrix fits in an hour on this machine; runs can stop before full "
      "convergence, which is why the time-to-accuracy target is relative to vanilla's best within the same "
      "number of epochs rather than an absolute accuracy.\n")
    if R.pipelined:
        configs = []
        for method in PIPELINED:
            pc = next((r["report"]["config"].get("pipeline") for r in R.ok if r["bench"]["variant"] == method
                       and isinstance(r["report"].get("config"), dict)
                       and isinstance(r["report"]["config"].get("pipeline"), dict)), None)
            if pc:
                configs.append(f"{method}: " + ", ".join(f"`{k}` {json.dumps(x)}" for k, x in sorted(pc.items())))
        w("**Layer 0** is exchanged every epoch by every method, so bytes and times compare like for like: the "
          "pipelined methods, whose default with ranks aggregates the input features once before training "
          "(`--precompute-layer0`), are pinned with `--no-precompute-layer0`.\n")
        w("**Pipelined methods** otherwise run at `halo train`'s defaults except for the ablations' flags"
          + (" (the runs' pipeline configurations: " + "; ".join(configs) + ")" if configs else "") + ".\n")

    # ---------------------------------------------------------------- emulation limits
    w("## What the emulation cannot model\n")
    w("(From [multi-host.md](multi-host.md#what-it-cannot-model); these bound what the numbers mean.)\n")
    w("- **Latency and jitter**: no `netem` on this kernel; `tbf` only shapes the rate and adds delay only by "
      "queueing (≤ 20 ms). Latency-bound effects (many small messages, the all-reduce's synchronisation) are "
      "underestimated, which flatters every method equally but hides part of the cost of message count.")
    w(f"- **Shared CPU**: all emulated hosts run on the same {mach.get('cores')} cores, as do the kernel's TCP work "
      "for every link and other users' jobs. With P = 4 single-threaded ranks on 2 cores, compute is ~2× slower "
      "than on 4 real machines, so compute-bound cells understate what overlap and quantization can win and "
      "speed-ups between P = 2 and P = 4 are meaningless; compare methods within a cell.")
    w("- **No real NIC or switch**: veth pairs and a non-blocking bridge; each host's link is capped separately in "
      "each direction (`tbf` counts Ethernet frames, so TCP carries ~95.7% of the nominal rate); no shared uplink, "
      "no oversubscription, no loss.")
    w("- **A friendlier launch than ssh**: same binary, filesystem and environment on every \"host\".\n")

    # ---------------------------------------------------------------- caps and datasets
    w("## Links\n")
    rows = []
    for cap in R.cap_list:
        c = R.caps.get(cap)
        if c:
            rows.append([cap_label(cap), f"{c['forward']['mbit_s']:.1f}", f"{c['reverse']['mbit_s']:.1f}",
                         f"{c['mbit_s'] / (cap_nominal_bytes(cap) * 8 / 1e6) * 100:.1f}%", c["forward"]["tool"],
                         f"`{c['forward']['command']}`"])
        else:
            rows.append([cap_label(cap), "not measured", "", "", "", ""])
    w(md_table(["cap (tbf, each direction)", "h0→h1 Mbit/s", "h1→h0 Mbit/s", "of nominal", "tool", "command"],
               rows, "lrrrll"))
    w("\nThe measured rate (mean of both directions) is the bandwidth used for the wire-time floors below.\n")

    w("## Datasets and partitions\n")
    rows = []
    for ds in R.datasets:
        dc = R.ds_cfg[ds]
        for P in R.parts:
            p = R.partitions.get(f"{ds}-p{P}")
            if not p:
                continue
            rows.append([dc["label"], f"{p['nodes']:,}", f"{p['directed_edges']:,}", str(p["features"]),
                         str(p["classes"]), str(P), p["method"], f"{100 * p['cut_fraction']:.1f}%",
                         f"{sum(p['halo']):,}", f"{dc['epochs']}", str(dc["eval_every"]), str(dc["assign_cycle"])])
    w(md_table(["dataset", "nodes", "directed edges", "features", "classes", "P", "partition", "edges cut",
                "halo rows (all ranks)", "epochs", "eval every", "assign cycle"], rows, "lrrrrrlrrrrr"))
    w("")
    for ds in R.datasets:
        src = R.ds_cfg[ds]["source"]
        if src.startswith("synthetic:"):
            w(f"`{ds}` is `{src}` (generated by Halo), split with `--method random` so that nearly every node "
              "is a halo node of every other part: a communication-bound graph by construction.\n")

    # ---------------------------------------------------------------- per-dataset results
    w("## Results\n")
    w("Per cell (dataset × P × cap × method), over the repetitions: **throughput** = 1 / median epoch time of a "
      "run (epoch 0 excluded as warm-up; an epoch is one training step, evaluation excluded), min / median / max "
      "over repetitions; **speed-up** = median throughput ÷ vanilla's in the same dataset, P and cap; **time to "
      "accuracy** = cumulative training time (sum of epoch times, evaluation excluded) until the validation "
      f"accuracy first reaches the target, {100 * cfg['target_fraction']:.0f}% of vanilla's best validation "
      "accuracy on that dataset (median over all vanilla runs), median over repetitions, evaluated every "
      "`eval every` epochs; **test acc.** = test accuracy at the epoch of best validation accuracy / after the "
      "last epoch (medians), Δ test compares the former with vanilla's; "
      "**halo MB/epoch** = halo rows and gradients sent by all ranks per epoch (all-reduce excluded) and its ratio "
      "to vanilla; **bits** = mean bits per halo row in the last assignment cycle"
      + (" (AdaQP), or mean bits per message sent over the run, marked (msg) (PipeGCN, PipeQS)" if R.pipelined else "")
      + ".\n")
    w("The breakdown is rank 0's epoch split into compute, quantize/dequantize, waiting for halo messages and the "
      "gradient all-reduce (medians; they add up to the epoch). **Hidden** = the fraction of rank 0's halo "
      "transfer time that overlapped computation. **Floor** = max(compute + quantize, wire), where wire = "
      "bytes sent per epoch by all ranks (halo and all-reduce) ÷ P ÷ the measured link rate: the assumption is that "
      "every rank sends an equal share through its own capped uplink while all uplinks run in parallel, and "
      "receives through its downlink, a separate direction that shares nothing with the uplink or with other hosts "
      "(the bridge is non-blocking); the all-reduce counts as the one copy of the gradients per rank that Halo "
      "reports, not its algorithm's real traffic, and latency is ignored. **Measured ÷ floor** is how far the "
      "epoch is from that bound.\n")
    for ds in R.datasets:
        dc = R.ds_cfg[ds]
        w(f"### {dc['label']}\n")
        tgt = R.target.get(ds)
        if tgt is not None:
            w(f"Target validation accuracy {tgt:.4f} ({100 * cfg['target_fraction']:.0f}% of vanilla's best, "
              f"{R.vanilla_best[ds]:.4f}); {dc['epochs']} epochs per run. " + convergence_note(R, ds) + "\n")
        rows, rows_b = [], []
        for P in R.parts:
            for cap in R.cap_list:
                van = R.cell(ds, P, cap, "vanilla")
                for v in R.variants + [x for x in R.ablation_variants]:
                    c = R.cell(ds, P, cap, v)
                    if c is None:
                        continue
                    s, lo, hi = R.speedup(ds, P, cap, v)
                    ratio = (c["halo_bytes"] / van["halo_bytes"]) if van and van["halo_bytes"] else None
                    dacc = (None if not van or c["test_at_best_val"] is None or van["test_at_best_val"] is None
                            else 100 * (c["test_at_best_val"] - van["test_at_best_val"]))
                    noisy = (spread(c) or 1) > NOISY
                    rows.append([str(P), cap_label(cap), v + ("" if c["n"] == cfg["repetitions"] else f" (n={c['n']})"),
                                 f"{c['thr_min']:.2f} / **{c['thr_med']:.2f}** / {c['thr_max']:.2f}" + (" †" if noisy else ""),
                                 "1" if v == "vanilla" else (f"{s:.2f}×" if s else "–"),
                                 fmt_tta(c, cfg["repetitions"]),
                                 f_num(c["test_at_best_val"], "{:.4f}") + " / " + f_num(c["final_test"], "{:.4f}"),
                                 "" if v == "vanilla" else f_num(dacc, "{:+.2f}"),
                                 f_mb(c["halo_bytes"]), f_num(ratio, "{:.3f}"),
                                 f_num(c["mean_bits"], "{:.2f}") if c["mean_bits"] is not None or not c["pipe"]
                                 else f_num(c["pipe"]["mean_bits"], "{:.2f}") + " (msg)"])
                    rows_b.append([str(P), cap_label(cap), v, f_ms(c["epoch_median_s"])] +
                                  [f_ms(c[k]) for k, _ in COMPONENTS] +
                                  [f_pct(c["hidden_fraction"]) if v != "vanilla" else f_pct(c["hidden_fraction"]),
                                   f_mb(c["bytes_sent"] / P if c["bytes_sent"] else None),
                                   f"{f_ms(c['floor_s'])} ({c['floor_bound']})",
                                   f_num(c["vs_floor"], "{:.2f}")])
        w(md_table(["P", "cap", "method", "epochs/s (min / med / max)", "speed-up", "time to acc.",
                    "test acc. (best val / final)",
                    "Δ test (pp)", "halo MB/epoch", "÷ vanilla", "bits"], rows, "llllrrrrrrr"))
        w("")
        w(f"† repetitions disagree by more than {NOISY}× (max/min): another job's load changed under this cell.\n")
        w(md_table(["P", "cap", "method", "epoch ms", "compute", "quantize", "comm wait", "all-reduce", "hidden",
                    "MB sent/rank", "floor ms", "measured ÷ floor"], rows_b, "lllrrrrrrrrr"))
        w("")
        for kind, alt in (("throughput", "throughput vs cap"), ("speedup", "speed-up"), ("breakdown", "breakdown")):
            if (kind, ds) in files:
                w(f"![{dc['label']}: {alt}]({svg_rel}/{files[(kind, ds)]})")
        w("")

    # ---------------------------------------------------------------- microbench
    if R.micro and R.micro.get("report"):
        mb = R.micro["report"]
        s = mb["spmm"]
        w("## Kernel roofline (`halo microbench`)\n")
        w(f"OpenBLAS kernels: {mb['blas_core']}. SpMM is the GCN operator of `{os.path.basename(s['dataset'])}` "
          f"({s['rows']:,} rows, {s['non_zeros']:,} non-zeros) times a dense matrix of width {s['width']}; its "
          "traffic counts each non-zero's gathered row slice, index and value and each output row once. Best of "
          f"{cfg['microbench'].get('repeats', 5)} repetitions, run once in this benchmark (under the same load).\n")
        rows = []
        for t in sorted(mb["stream_triad_g_bps"], key=int):
            rows.append([t, f"{mb['stream_triad_g_bps'][t]:.1f}", f"{s['gbps'][t]:.1f}",
                         f"{100 * s['fraction_of_stream'][t]:.0f}%", f"{1000 * s['seconds'][t]:.2f}"])
        w(md_table(["threads", "STREAM triad GB/s", "SpMM GB/s", "SpMM ÷ triad", "SpMM ms"], rows))
        w("")
        rows = []
        for g in mb["gemm"]:
            op = "A·B" if not (g["transpose_a"] or g["transpose_b"]) else ("Aᵀ·B" if g["transpose_a"] else "A·Bᵀ")
            # Older microbench files have neither threads nor fractions of the square rate.
            fraction = f"{100 * g['fraction_of_square']:.0f}%" if g.get("fraction_of_square") else "–"
            rows.append([f"{g['m']} × {g['n']} × {g['k']}", op, str(g.get("threads", mb["threads"])),
                         f"{g['gflops']:.1f}", fraction])
        w(md_table(["GEMM m × n × k", "op", "threads", "GFLOP/s", "÷ square"], rows, "llrrr"))
        w("")
        w("SpMM above 100% of the triad means the gathered rows were served from cache rather than memory (the "
          "traffic convention counts every gathered row as if it came from memory). The per-cell floors (compute "
          "vs wire) are in the breakdown tables above: at the capped rates every communication-heavy cell is "
          "wire-bound, so the kernels' distance from the memory roofline matters only where the floor says "
          "`compute`.\n")

    # ---------------------------------------------------------------- peer
    if R.peer:
        w("## Peer comparison: PyTorch Geometric, single process\n")
        pc = cfg["peer"]
        w(f"Same model and hyperparameters as above, {pc['epochs']} epochs, {pc.get('threads', 2)} threads each "
          "(Halo `--threads 2`; PyG `--threads 2`, i.e. `torch.set_num_threads(2)`), no partitioning, no "
          "communication; the two frameworks alternate. Epoch time: the median over one run (Halo's "
          "`epoch_time_median_s`; PyG's excludes its first 3 epochs); **best** is the fastest of the "
          f"{pc.get('repetitions', 1)} repetition(s), the fairest figure on a shared machine, and the ratio uses it. "
          "Accuracy: test accuracy at the best validation epoch (median over repetitions). Per-repetition epoch "
          "times and the foreign load during each are listed below the table.\n")
        rows, detail = [], []
        for ds in R.datasets:
            by = {}
            for p in R.peer:
                if p["bench"]["dataset"] == ds and p["report"]:
                    by.setdefault(p["bench"]["framework"], []).append(p)
            if not by:
                continue
            h, g = by.get("halo", []), by.get("pyg", [])
            ht = [p["report"]["epoch_time_median_s"] for p in h]
            gt = [p["report"]["epoch_time_median_s"] for p in g]
            ha = median([p["report"]["test_accuracy_at_best_val"] for p in h])
            ga = median([p["report"]["test_accuracy_at_best_val"] for p in g])
            hv = median([p["report"]["best_val_accuracy"] for p in h])
            gv = median([p["report"]["best_val_accuracy"] for p in g])
            setup = g[0]["report"].get("setup", "") if g else "PyG run failed or skipped"
            rows.append([R.ds_cfg[ds]["label"], f"{f_ms(mn(ht))} / {f_ms(median(ht))}",
                         f"{f_ms(mn(gt))} / {f_ms(median(gt))}" if gt else "–",
                         f"**{mn(gt) / mn(ht):.2f}×**" if ht and gt else "–",
                         f_num(ha, "{:.4f}"), f_num(ga, "{:.4f}"), f_num(hv, "{:.4f}"), f_num(gv, "{:.4f}"), setup])
            for p in sorted(h + g, key=lambda p: (p["bench"]["framework"], p["bench"]["rep"])):
                detail.append(f"{R.ds_cfg[ds]['label']} {p['bench']['framework']} r{p['bench']['rep']}: "
                              f"{f_ms(p['report']['epoch_time_median_s'])} ms "
                              f"(other jobs {f_num(p['bench'].get('other_cpu_cores'), '{:.2f}')} cores)")
        w(md_table(["dataset", "Halo epoch ms (best / median)", "PyG epoch ms (best / median)", "PyG ÷ Halo (best)",
                    "Halo test acc.", "PyG test acc.", "Halo best val", "PyG best val", "PyG setup"], rows,
                   "lrrrrrrrl"))
        w("")
        if detail:
            w("Per repetition: " + "; ".join(detail) + ". A run that shares the two cores with another job can be "
              "several times slower than its twin (PyTorch's OpenMP threads wait on a busy core), which is why the "
              "ratio uses the best repetition.\n")

    # ---------------------------------------------------------------- failures, config
    if R.failed:
        w("## Failed runs\n")
        for r in R.failed:
            w(f"- `{r['bench']['id']}`: exit status {r['bench']['exit_status']} after {r['bench']['wall_s']:.0f} s "
              f"(log: `{rel(str(out))}/logs/{r['bench']['id']}.log`)")
        w("")
    w("## Configuration of this run\n")
    w("```json")
    w(json.dumps(cfg, indent=1, sort_keys=True))
    w("```")
    text = "\n".join(L) + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    write_json(out / "summary.json", summary(R))
    return text


def pipeqs_verdict(R: Results, ds, P, cap) -> dict | None:
    """PipeQS's acceptance in one cell, or None where vanilla's halo wait is not over COMM_BOUND of its epoch."""
    v = R.cell(ds, P, cap, "vanilla")
    if not v or not v["epoch_median_s"] or (v["comm_wait_s"] or 0) <= COMM_BOUND * v["epoch_median_s"]:
        return None
    a, q, g = R.cell(ds, P, cap, "adaqp"), R.cell(ds, P, cap, "pipeqs"), R.cell(ds, P, cap, "pipegcn")
    thr_ok = None if not a or not q else q["thr_med"] >= a["thr_med"]
    wait = None if not q or q["comm_wait_s"] is None else q["comm_wait_s"] / v["comm_wait_s"]
    wait_ok = None if wait is None else wait <= WAIT_TARGET
    ok = None if thr_ok is None or wait_ok is None else thr_ok and wait_ok
    return {"vanilla": v, "adaqp": a, "pipeqs": q, "pipegcn": g, "share": v["comm_wait_s"] / v["epoch_median_s"],
            "vs_adaqp": R.speedup(ds, P, cap, "pipeqs", base="adaqp"), "wait_ratio": wait, "thr_ok": thr_ok,
            "wait_ok": wait_ok, "ok": ok}


def mark(ok) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")


def pipeline_section(R: Results) -> list[str]:
    """PipeGCN and PipeQS: PipeQS's acceptance against AdaQP and vanilla, what the pipeline did (staleness,
    bypasses, bit widths, skipped sends, halo wait) and every method's time to accuracy."""
    L: list[str] = []
    w = L.append
    cfg = R.cfg
    w("## Pipelined training: PipeGCN and PipeQS\n")
    w("`pipegcn` computes every layer with the halo rows and gradients its peers sent one epoch earlier, while "
      "this epoch's travel (fp32, staleness exactly 1; smoothed with `--smoothing`). `pipeqs` uses the newest "
      "block that has arrived, at most `--max-staleness` epochs old, bypasses a late link with its cached block, "
      "and moves each link's bit width down when the link is congested (its transfers late, or the rank's last "
      "epoch bound by communication) and otherwise up when its rows drift."
      + (" Ablation `pipeqs/no-bypass` waits for late links instead of bypassing them."
         if "pipeqs/no-bypass" in R.ablation_variants else "")
      + (" Ablation `pipeqs/no-adaptive-bits` keeps every link at `--initial-bits`."
         if "pipeqs/no-adaptive-bits" in R.ablation_variants else "")
      + " Evaluation always exchanges synchronously at full precision, so accuracies compare like for like.\n")

    # ---- acceptance
    rows, verdicts, skipped_cells = [], [], 0
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                if not R.cell(ds, P, cap, "vanilla"):
                    continue
                x = pipeqs_verdict(R, ds, P, cap)
                if x is None:
                    skipped_cells += 1
                    continue
                verdicts.append(x["ok"])
                v, a, q, g = x["vanilla"], x["adaqp"], x["pipeqs"], x["pipegcn"]
                s, lo, hi = x["vs_adaqp"]
                rows.append([R.ds_cfg[ds]["label"], str(P), cap_label(cap), f_pct(x["share"]),
                             f_num(v["thr_med"]), f_num(a["thr_med"] if a else None),
                             f_num(g["thr_med"] if g else None), f_num(q["thr_med"] if q else None),
                             "–" if s is None else (f"{s:.2f}× ({lo:.2f}–{hi:.2f})" if lo is not None
                                                    else f"{s:.2f}×"),
                             f_ms(v["comm_wait_s"]), f_ms(q["comm_wait_s"] if q else None),
                             f_pct(x["wait_ratio"]), mark(x["thr_ok"]), mark(x["wait_ok"]), f"**{mark(x['ok'])}**"])
    if "pipeqs" in R.variants:
        w(f"**Acceptance.** In every cell where vanilla waits for halo messages more than "
          f"{100 * COMM_BOUND:.0f}% of its epoch, PipeQS should train at least as fast as AdaQP (median throughput; "
          f"in brackets the per-repetition ratios, paired by seed) and wait for halo messages at most "
          f"{100 * WAIT_TARGET:.0f}% as long as vanilla (rank 0's median halo wait per epoch, epoch 0 excluded).\n")
        if rows:
            w(md_table(["dataset", "P", "cap", "vanilla halo-wait share", "vanilla ep/s", "AdaQP ep/s",
                        "PipeGCN ep/s", "PipeQS ep/s", "PipeQS ÷ AdaQP", "vanilla halo wait ms",
                        "PipeQS halo wait ms", "÷ vanilla", "ep/s ≥ AdaQP", f"wait ≤ {100 * WAIT_TARGET:.0f}%",
                        "accepted"], rows, "lrlrrrrrrrrrlll"))
            w("")
            judged = [ok for ok in verdicts if ok is not None]
            w(f"PipeQS meets both conditions in **{sum(1 for ok in judged if ok)} of {len(judged)}** "
              f"communication-bound cells" + (f" ({len(verdicts) - len(judged)} without the runs to judge)"
                                              if len(judged) < len(verdicts) else "")
              + f"; {skipped_cells} cell(s) where vanilla's halo wait is at most {100 * COMM_BOUND:.0f}% of its "
              "epoch are not judged. A ✗ on throughput within the cell's noise († in the tables below) is not "
              "a clear loss.\n")
        else:
            w("No cell of this run is communication-bound by that measure (or vanilla's runs are missing).\n")

    # ---- what the pipeline did
    rows = []
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                van = R.cell(ds, P, cap, "vanilla")
                for v in R.pipelined:
                    c = R.cell(ds, P, cap, v)
                    if c is None:
                        continue
                    pp = c["pipe"] or {}
                    ratio = (c["comm_wait_s"] / van["comm_wait_s"]) if van and van["comm_wait_s"] else None
                    rows.append([R.ds_cfg[ds]["label"], str(P), cap_label(cap),
                                 v + ("" if c["n"] == cfg["repetitions"] else f" (n={c['n']})"),
                                 f_num(pp.get("mean_age")),
                                 "–" if pp.get("max_age") is None else f"{pp['max_age']} / {pp['bound']}",
                                 "–" if not pp else f"{pp['older']:,}" + (" ⚠" if pp["older"] else ""),
                                 f_pct(pp.get("bypass_share")), f_pct(pp.get("wait_share")),
                                 f_bits(pp.get("bits_share")),
                                 "–" if pp.get("skipped_share") is None else
                                 f"{f_pct(pp['skipped_share'])} ({pp['skipped'] / pp['runs']:.0f}/run)",
                                 f_num(pp.get("mean_drift"), "{:.3f}"),
                                 f_ms(c["comm_wait_s"]), f_pct(ratio)])
    if rows:
        w("**What the pipeline did** (pooled over a cell's repetitions; every epoch, the first included; all ranks, "
          "layers and directions). **Staleness**: mean age in epochs of the halo blocks the layers used (PipeGCN's "
          "zero blocks of a `zeros` warm-up excluded), and the oldest age used against the bound (1 for PipeGCN, "
          "`--max-staleness` for PipeQS); **beyond bound**: blocks used older than the bound, which must be 0 (⚠). "
          "**Bypassed**: uses of a cached block more than one epoch old because nothing newer had arrived, ÷ all "
          "uses; **waited**: uses that blocked on their message, ÷ all uses. **Widths**: messages sent by bit "
          "width (a message of mixed widths counts under its most common one). **Skipped**: sends dropped because "
          "the link was still busy with the previous one, ÷ sends due, and per run. **Drift**: mean (1 − cos)/2 "
          "between successive blocks of a link. **Halo wait**: rank 0's median time blocked on halo messages per "
          "epoch, and as a share of vanilla's in the same cell.\n")
        w(md_table(["dataset", "P", "cap", "method", "mean staleness", "oldest / bound", "beyond bound", "bypassed",
                    "waited", "widths (share of messages)", "skipped sends", "drift", "halo wait ms", "÷ vanilla"],
                   rows, "lrllrrrrrlrrrr"))
        w("")

    # ---- time to accuracy, every method
    rows = []
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                cells = [R.cell(ds, P, cap, v) for v in R.variants]
                if not any(cells):
                    continue
                reached = [c["tta_med"] for c in cells if c and c["tta_reached"]]
                best = min(reached) if reached else None
                rows.append([R.ds_cfg[ds]["label"], str(P), cap_label(cap)] +
                            [(f"**{fmt_tta(c, cfg['repetitions'])}**" if c and c["tta_reached"] and c["tta_med"] == best
                              else fmt_tta(c, cfg["repetitions"])) for c in cells])
    if rows:
        w(f"**Time to accuracy, every method**: training time (evaluation excluded) until validation accuracy first "
          f"reaches {100 * cfg['target_fraction']:.0f}% of vanilla's best on the dataset (median over repetitions; "
          "the fastest in bold). Stale or quantized halos cost accuracy per epoch, faster epochs win it back; this "
          "is where the two meet. The ablations' times are in the per-dataset tables under [Results](#results).\n")
        w(md_table(["dataset", "P", "cap"] + R.variants, rows, "lrl" + "r" * len(R.variants)))
        w("")
    return L


def spread(c) -> float | None:
    """max / min throughput over the repetitions of a cell."""
    if not c or not c["thr_min"]:
        return None
    return c["thr_max"] / c["thr_min"]


NOISY = 1.3


def diagnosis(R: Results) -> list[str]:
    """Rule-based notes, one per cell that needs one, each naming what the breakdown shows:
    AdaQP under 1.1× vanilla; AdaQP's epoch dominated by the all-reduce it does not touch; AdaQP more than 10%
    slower than quantization alone; cells whose repetitions disagree by more than NOISY×."""
    notes = []

    def parts_of(c):
        tot = c["epoch_median_s"] or 1
        return {n: (c[k] or 0) / tot for k, n in COMPONENTS}

    def breakdown(name, c, p):
        return (f"{name}'s epoch ({f_ms(c['epoch_median_s'])} ms) is {100 * p['compute']:.0f}% compute, "
                f"{100 * p['quantize']:.0f}% quantize, {100 * p['comm wait']:.0f}% halo wait, "
                f"{100 * p['all-reduce']:.0f}% all-reduce")

    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                a, v = R.cell(ds, P, cap, "adaqp"), R.cell(ds, P, cap, "vanilla")
                s, lo, hi = R.speedup(ds, P, cap, "adaqp")
                if s is None:
                    continue
                where = f"{R.ds_cfg[ds]['label']}, P={P}, {cap_label(cap)}"
                pv, pa = parts_of(v), parts_of(a)
                said = []
                if s < 1.10:
                    txt = f"{where}: AdaQP only {s:.2f}×. {breakdown('Vanilla', v, pv)}; {breakdown('AdaQP', a, pa)}."
                    top_v = max(pv, key=pv.get)
                    if top_v == "all-reduce":
                        txt += " The gradient all-reduce dominates, and AdaQP neither quantizes nor overlaps it."
                    elif top_v == "compute":
                        txt += (" The epoch is compute-bound: there is little communication to save, and "
                                "quantization adds work on the shared cores.")
                    elif pa["comm wait"] >= 0.5:
                        txt += " Halo waiting still dominates AdaQP's epoch."
                    said.append(txt)
                elif pa["all-reduce"] >= 0.5:
                    said.append(f"{where}: AdaQP {s:.2f}×, bounded by the all-reduce: {breakdown('AdaQP', a, pa)} "
                                f"(vanilla's halo wait {f_ms(v['comm_wait_s'])} ms is down to "
                                f"{f_ms(a['comm_wait_s'])} ms; the all-reduce, {f_ms(a['allreduce_s'])} ms against vanilla's "
                                f"{f_ms(v['allreduce_s'])} ms, moves the same bytes).")
                q = R.cell(ds, P, cap, "adaqp-q")
                if q and q["thr_med"] and a["thr_med"] < 0.9 * q["thr_med"]:
                    pq = parts_of(q)
                    txt = (f"{where}: AdaQP ({a['thr_med']:.2f} epochs/s) is slower than quantization alone "
                           f"(`adaqp-q`, {q['thr_med']:.2f}). {breakdown('AdaQP', a, pa)}; {breakdown('adaqp-q', q, pq)}.")
                    if max(spread(a) or 1, spread(q) or 1) > NOISY:
                        txt += (f" Their repetitions spread {spread(a):.2f}× and {spread(q):.2f}× (max/min), so the "
                                "difference is within this machine's noise.")
                    elif (a["compute_s"] or 0) > 1.1 * (q["compute_s"] or 0):
                        txt += (" AdaQP's compute is higher: the overlapped schedule splits each layer's work "
                                "(central rows while messages fly, then marginal rows), which costs on two shared "
                                "cores what it hides on the wire.")
                    said.append(txt)
                sv, sa = spread(v), spread(a)
                if max(sv or 1, sa or 1) > NOISY and not any("noise" in t for t in said):
                    said.append(f"{where}: noisy — throughput over the repetitions spreads {sv:.2f}× for vanilla and "
                                f"{sa:.2f}× for AdaQP (max/min); the paired speed-ups range {lo:.2f}–{hi:.2f}×.")
                notes.extend(said)
    return notes


def convergence_note(R: Results, ds: str) -> str:
    """Says whether vanilla was still improving at the end, and how much vanilla itself varies across seeds."""
    rs = [r for r in R.ok if r["bench"]["dataset"] == ds and r["bench"]["variant"] == "vanilla"]
    if not rs:
        return ""
    E = R.ds_cfg[ds]["epochs"]
    late = sum(1 for r in rs if (r["report"].get("best_val_epoch") or 0) >= 0.8 * (E - 1))
    bv = [r["report"]["best_val_accuracy"] for r in rs]
    te = [r["report"]["test_accuracy_at_best_val"] for r in rs]
    txt = (f"Vanilla alone, over its {len(rs)} runs (seeds × cells): best validation accuracy {min(bv):.4f}–"
           f"{max(bv):.4f}, test accuracy at best validation {min(te):.4f}–{max(te):.4f}; accuracy differences "
           "between methods smaller than that spread are seed noise.")
    if late * 2 > len(rs):
        txt += (f" In {late} of {len(rs)} vanilla runs the best validation epoch lies in the last 20% of the "
                f"{E} epochs: training was still improving when it stopped, so accuracies and the time to accuracy "
                "are measured on a rising curve, where a few epochs' delay moves them a lot.")
    return txt


def overlap_notes(R: Results) -> str:
    """Overlap can hide at most the computation that needs no remote rows; say how that compares to the wait."""
    if "adaqp-p" not in R.variants:
        return ""
    best, worst = None, None
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                s, _, _ = R.speedup(ds, P, cap, "adaqp-p")
                if s is None:
                    continue
                noisy = max(spread(R.cell(ds, P, cap, "adaqp-p")) or 1, spread(R.cell(ds, P, cap, "vanilla")) or 1) > NOISY
                key = (s, ds, P, cap, " †" if noisy else "")
                best = key if best is None or s > best[0] else best
                worst = key if worst is None or s < worst[0] else worst
    if best is None:
        return ""
    cells = heavy = 0
    gains = []
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                v = R.cell(ds, P, cap, "vanilla")
                if not v:
                    continue
                cells += 1
                if (v["comm_wait_s"] or 0) > 3 * (v["compute_s"] or 0):
                    heavy += 1
                    s, _, _ = R.speedup(ds, P, cap, "adaqp-p")
                    if s is not None:
                        gains.append(s)
    txt = (f"speed-ups range from {worst[0]:.2f}× ({R.ds_cfg[worst[1]]['label']}, P={worst[2]}, "
           f"{cap_label(worst[3])}{worst[4]}) to {best[0]:.2f}× ({R.ds_cfg[best[1]]['label']}, P={best[2]}, "
           f"{cap_label(best[3])}{best[4]}){' († = a noisy cell, see the tables)' if best[4] or worst[4] else ''}. Overlapping can hide at most the compute that needs no remote rows (the central "
           f"nodes'), so it cannot help much where the halo wait is several times the compute: in {heavy} of "
           f"{cells} cells vanilla waits more than 3× as long as it computes")
    if gains:
        txt += f", and there `adaqp-p` gets {min(gains):.2f}–{max(gains):.2f}×"
    txt += ". The quantized variants get most of their gain from the bytes."
    return txt


def allreduce_rows(R: Results) -> list[list[str]]:
    rows = []
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                v = R.cell(ds, P, cap, "vanilla")
                if not v or v["bytes_sent"] is None or v["halo_bytes"] is None:
                    continue
                per_rank = (v["bytes_sent"] - v["halo_bytes"]) / P
                Bps, _ = R.cap_bytes_per_s(cap)
                wire = per_rank / Bps
                ar = v["allreduce_s"] or 0
                rows.append([R.ds_cfg[ds]["label"], str(P), cap_label(cap), f_mb(per_rank), f_ms(ar),
                             f_ms(v.get("allreduce_last_rank_s")), f_ms(v.get("allreduce_span_s")), f_ms(wire),
                             f_num(ar / wire if wire else None, "{:.1f}×"), f_pct(ar / v["epoch_median_s"])])
    return rows


def summary(R: Results) -> dict:
    """The aggregated numbers, machine-readable (bench/results/bench/summary.json)."""
    cells = []
    for ds in R.datasets:
        for P in R.parts:
            for cap in R.cap_list:
                for v in R.variants + R.ablation_variants:
                    c = R.cell(ds, P, cap, v)
                    if c is None:
                        continue
                    s, lo, hi = R.speedup(ds, P, cap, v)
                    c = {k: x for k, x in c.items() if k != "reps"}
                    c.update(dataset=ds, parts=P, cap=cap, variant=v, speedup=s, speedup_paired_min=lo,
                             speedup_paired_max=hi)
                    cells.append(c)
    return {"targets": R.target, "vanilla_best_val": R.vanilla_best, "cells": cells,
            "failed": [r["bench"]["id"] for r in R.failed]}
