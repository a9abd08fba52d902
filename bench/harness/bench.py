#!/usr/bin/env python3
"""Halo's benchmark driver: distributed training over emulated, rate-capped links, a PyG peer and a kernel
roofline, all in one run, then docs/benchmarks.md with its plots.

Normally started by bench/bench.sh (which installs dependencies and builds first):
    python3 bench/harness/bench.py [--config FILE] [--out DIR] [--doc FILE] [--svg-dir DIR]
                                   [--resume] [--report-only] [--skip-peer] [--skip-microbench]

Needs root (network namespaces). Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import runner  # noqa: E402
from common import (HARNESS, REPO, CpuSnapshot, LoadMonitor, load_config, machine_info,  # noqa: E402
                    track_own_cpu, write_json)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(HARNESS / "default.json"))
    ap.add_argument("--out", help="results directory (default: bench/results/bench, or bench/results/bench-<name> "
                                  "for configurations other than the default)")
    ap.add_argument("--doc", help="Markdown to write (default: docs/benchmarks.md for the default configuration, "
                                  "<out>/benchmarks.md otherwise)")
    ap.add_argument("--svg-dir", help="where the plots go (default: docs/benchmarks beside the default doc)")
    ap.add_argument("--halo", default=str(REPO / ".build" / "release" / "halo"))
    ap.add_argument("--python-peer", help="python of the PyG venv (default: skip PyG if not given)")
    ap.add_argument("--resume", action="store_true", help="keep results of runs already done with the same settings")
    ap.add_argument("--report-only", action="store_true", help="only regenerate the document from the results")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-microbench", action="store_true")
    ap.add_argument("--skip-matrix", action="store_true")
    ap.add_argument("--invocation", default=None, help="the command line to show in the document")
    args = ap.parse_args()

    cfg_path = Path(args.config).resolve()
    cfg = load_config(cfg_path)
    default = cfg.get("name") == "default"
    out = Path(args.out).resolve() if args.out else REPO / "bench" / "results" / ("bench" if default else f"bench-{cfg['name']}")
    doc = Path(args.doc).resolve() if args.doc else (REPO / "docs" / "benchmarks.md" if default else out / "benchmarks.md")
    svg_dir = Path(args.svg_dir).resolve() if args.svg_dir else doc.parent / "benchmarks"

    if args.report_only:
        report.generate(out, doc, svg_dir)
        print(f"wrote {doc} and {svg_dir}/*.svg", file=sys.stderr)
        return 0

    if os.geteuid() != 0:
        print("bench.py: needs root for the network namespaces (scripts/netns/cluster.sh)", file=sys.stderr)
        return 2
    if not os.access(args.halo, os.X_OK):
        print(f"bench.py: {args.halo} is missing; build it first (bash bench/bench.sh does)", file=sys.stderr)
        return 2

    if out.exists() and not args.resume:
        for sub in ("runs", "peer", "logs"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in ("caps.json", "microbench.json", "summary.json", "env.json", "partitions.json"):
            (out / f).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    parts_dir = REPO / "bench" / "results" / "bench-parts"

    t0 = time.time()
    cgroup = track_own_cpu()   # so that "other jobs' load" excludes every process this run starts
    start_snap = CpuSnapshot()
    monitor = LoadMonitor(period=10.0)
    monitor.start()
    env = {"config": cfg, "config_path": (os.path.relpath(cfg_path, REPO) if cfg_path.is_relative_to(REPO) else str(cfg_path)), "machine": machine_info(),
           "started": time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(t0)),
           "invocation": args.invocation or "python3 " + " ".join([os.path.relpath(__file__, REPO)] + sys.argv[1:])}
    with open(args.halo, "rb") as f:
        env["halo_binary"] = {"path": os.path.relpath(args.halo, REPO), "sha256": hashlib.sha256(f.read()).hexdigest()}
    write_json(out / "env.json", env)

    # SIGTERM (bench.sh's trap, a killed job) unwinds like Ctrl-C, so the cluster and the cgroup are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    cluster = runner.Cluster(out / ".cluster-owned")
    status = 0
    try:
        runner.partition_all(cfg, args.halo, parts_dir, out)
        if not args.skip_microbench:
            runner.run_microbench(cfg, args.halo, out)
        if not args.skip_peer:
            runner.run_peer(cfg, args.halo, args.python_peer, out)
        if not args.skip_matrix:
            cluster.wait_free(cfg["cluster_wait_s"])
            env["matrix"] = runner.run_matrix(cfg, args.halo, parts_dir, out, cluster, args.resume)
    except KeyboardInterrupt:
        status = 130
        runner.log("interrupted")
    except Exception as e:  # keep whatever was measured, still write the document
        status = 1
        runner.log(f"error: {e}")
    finally:
        if cluster.current is not None or cluster.marker.exists():
            cluster.down()
        monitor.stop()
        end_snap = CpuSnapshot()
        env["wall_s"] = time.time() - t0
        env["load"] = monitor.summary()
        env["load_samples"] = monitor.samples
        env["other_cpu_cores"] = end_snap.others_since(start_snap)
        t_sh = os.environ.get("HALO_BENCH_T0")
        if t_sh:
            # bench.sh's start: the report includes dependency installation and the build.
            env["bench_sh_wall_s"] = time.time() - float(t_sh)
        env["own_cpu_accounting"] = "cgroup" if cgroup.path else "getrusage (misses the ranks)"
        write_json(out / "env.json", env)
        cgroup.close()
    try:
        report.generate(out, doc, svg_dir)
        runner.log(f"wrote {os.path.relpath(doc, REPO)} and {os.path.relpath(svg_dir, REPO)}/*.svg "
                   f"({env['wall_s'] / 60:.1f} min)")
    except Exception as e:
        runner.log(f"report failed: {e}")
        raise
    return status


if __name__ == "__main__":
    sys.exit(main())
