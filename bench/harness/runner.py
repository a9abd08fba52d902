"""Runs the measurements: partitions, the emulated cluster, training cells, link measurements, PyG peer and
microbench. Every raw result lands as JSON under the results directory; nothing here formats tables."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import PIPELINED, REPO, CpuSnapshot, ablation_groups, dataset_source, parse_variant, read_json, write_json

CLUSTER = REPO / "scripts" / "netns" / "cluster.sh"
STATE = Path("/run/halo-netns")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mpi_env() -> dict:
    env = dict(os.environ)
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


def run_logged(cmd: list[str], log_path: Path, timeout: float, env: dict | None = None) -> tuple[int, float]:
    """Runs cmd in its own process group, output to log_path; on timeout the whole group is killed.
    Returns (exit status, wall seconds); status 124 means timed out."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "w") as out:
        out.write("$ " + shlex.join(cmd) + "\n")
        out.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ,
                             start_new_session=True, cwd=REPO)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            out.write(f"\n[bench] timed out after {timeout:.0f} s; process group killed\n")
            rc = 124
    return rc, time.monotonic() - start


def tail(path: Path, n: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------- cluster

class Cluster:
    """The emulated hosts of scripts/netns/cluster.sh. Only ever removes a cluster this harness brought up,
    except through `down()` at the very end, which the brief asks for unconditionally."""

    def __init__(self, marker: Path):
        self.marker = marker          # exists while we own a cluster (bench.sh's trap reads it)
        self.current: tuple[int, str] | None = None

    @staticmethod
    def exists() -> bool:
        return (STATE / "hosts.map").exists() or (STATE / "hostfile").exists()

    def wait_free(self, wait_s: float) -> None:
        if self.marker.exists() and self.exists():
            log("a cluster left by an earlier run of this harness exists; taking it down")
            self.down()
        deadline = time.monotonic() + wait_s
        while self.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"an emulated cluster ({STATE}) is in use by someone else; waited {wait_s:.0f} s")
            log(f"an emulated cluster is up (someone else's?); waiting for it to go away …")
            time.sleep(15)

    def up(self, hosts: int, rate: str) -> None:
        if self.current is not None:
            self.down()
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(f"{os.getpid()}\n")
        r = subprocess.run([str(CLUSTER), "up", str(hosts), "--rate", rate], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"cluster.sh up {hosts} --rate {rate} failed: {r.stderr.strip()}")
        self.current = (hosts, rate)
        log(f"cluster up: {hosts} hosts at {rate}")

    def down(self) -> None:
        subprocess.run([str(CLUSTER), "down"], capture_output=True, text=True)
        self.current = None
        try:
            self.marker.unlink()
        except FileNotFoundError:
            pass

    def measure(self, seconds: float, reverse: bool = False) -> dict:
        cmd = [str(CLUSTER), "measure", "0", "1", "--seconds", str(seconds)] + (["--reverse"] if reverse else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + seconds)
        m = re.search(r"([0-9.]+) Mbit/s \((\w+)", r.stdout)
        if r.returncode != 0 or not m:
            raise RuntimeError(f"cluster.sh measure failed: {r.stdout.strip()} {r.stderr.strip()}")
        return {"mbit_s": float(m.group(1)), "tool": m.group(2), "line": r.stdout.strip(),
                "command": "scripts/netns/cluster.sh " + " ".join(cmd[1:])}


# ---------------------------------------------------------------------------------------------- partitions

def partition_all(cfg: dict, halo: str, parts_dir: Path, out: Path) -> dict:
    """`halo partition` once per (dataset, P) into the cache directory; returns their manifests' summaries."""
    summary = {}
    for ds in cfg["datasets"]:
        for P in cfg["parts"]:
            d = parts_dir / f"{ds['name']}-p{P}"
            cmd = [halo, "partition", "--dataset", dataset_source(ds), "--parts", str(P),
                   "--partition-method", ds["partition_method"], "--seed", "0", "--out", str(d)]
            plog = out / "logs" / f"partition-{ds['name']}-p{P}.log"
            rc, wall = run_logged(cmd, plog, 600)
            if rc != 0:
                raise RuntimeError(f"partition failed ({rc}): {tail(plog)}")
            man = read_json(d / "manifest.json")
            summary[f"{ds['name']}-p{P}"] = {
                "dataset": ds["name"], "parts": P, "method": man.get("method"), "dir": str(d),
                "edge_cut": man.get("edge_cut"), "cut_fraction": man.get("cut_fraction"),
                "balance": man.get("balance"), "nodes": man["dataset"]["nodes"],
                "directed_edges": man["dataset"]["directed_edges"], "features": man["dataset"]["feature_width"],
                "classes": man["dataset"]["classes"],
                "halo": [p.get("halo") for p in man.get("part_list", [])],
                "central": [p.get("central") for p in man.get("part_list", [])],
                "command": shlex.join(["halo"] + cmd[1:]), "seconds": wall,
            }
            log(f"partitioned {ds['name']} into {P} ({ds['partition_method']}): cut {100 * man.get('cut_fraction', 0):.1f}%")
    write_json(out / "partitions.json", summary)
    return summary


# ------------------------------------------------------------------------------------------- training cells

def train_args(cfg: dict, ds: dict, variant: dict, seed: int) -> list[str]:
    m = cfg["model"]
    # Every method exchanges layer 0 every epoch, so bytes and times compare like for like: the pipelined methods,
    # whose default aggregates the input features once instead, are pinned to it (the others' default already is).
    pinned = ["--no-precompute-layer0"] if variant["method"] in PIPELINED else []
    return ["--model", m["model"], "--layers", str(m["layers"]), "--hidden", str(m["hidden"]),
            "--dropout", str(m["dropout"]), "--lr", str(m["lr"]), "--weight-decay", str(m["weight_decay"]),
            "--norm", m["norm"], "--epochs", str(ds["epochs"]), "--eval-every", str(ds["eval_every"]),
            "--method", variant["method"], "--assign", variant["assign"],
            "--assign-cycle", str(ds["assign_cycle"])] + pinned + variant["flags"] + ["--seed", str(seed)]


def cell_id(ds: str, P: int, cap: str, variant: str, rep: int) -> str:
    v = variant.replace("/", "-").replace(":", "")
    return f"{ds}-p{P}-{cap}-{v}-r{rep}"


def plan(cfg: dict) -> list[dict]:
    """Every training run, grouped so the cluster is brought up once per (repetition, P, cap). Within a group
    the variant order rotates with the repetition so no method always runs first (or last) after a cap change;
    the ablation groups' variants follow, in the cells and repetitions each group names."""
    variants = [parse_variant(v) for v in cfg["variants"]]
    groups = [(g, [parse_variant(v) for v in g["variants"]]) for g in ablation_groups(cfg)]
    runs = []
    for rep in range(cfg["repetitions"]):
        for P in cfg["parts"]:
            for cap in cfg["caps"]:
                for ds in cfg["datasets"]:
                    k = rep % len(variants)
                    order = variants[k:] + variants[:k]
                    for g, abl_variants in groups:
                        if (rep < g.get("repetitions", 1) and ds["name"] in g.get("datasets", [])
                                and P in g.get("parts", []) and cap in g.get("caps", [])):
                            order = order + [v for v in abl_variants if v["label"] not in {o["label"] for o in order}]
                    for v in order:
                        runs.append(dict(rep=rep, parts=P, cap=cap, dataset=ds, variant=v,
                                         id=cell_id(ds["name"], P, cap, v["label"], rep)))
    return runs


def run_matrix(cfg: dict, halo: str, parts_dir: Path, out: Path, cluster: Cluster, resume: bool) -> dict:
    """Returns {"completed_repetitions", "truncated"}: a new repetition is not started when the previous one's
    duration says it would end past the deadline: cfg["max_total_minutes"] after bench.sh started
    (HALO_BENCH_T0, else now), less a minute for the report."""
    runs = plan(cfg)
    budget = cfg.get("max_total_minutes")
    t0 = float(os.environ.get("HALO_BENCH_T0") or time.time())
    deadline = t0 + 60 * budget - 60 if budget else None
    rep_started: dict[int, float] = {}
    status = {"completed_repetitions": cfg["repetitions"], "truncated": False}
    caps_path = out / "caps.json"
    caps = read_json(caps_path) if (resume and caps_path.exists()) else {}
    env = mpi_env()
    total = len(runs)
    done_walls: list[float] = []
    t_matrix = time.monotonic()
    group = None
    try:
        for i, r in enumerate(runs):
            ds, P, cap, v, rep = r["dataset"], r["parts"], r["cap"], r["variant"], r["rep"]
            if rep not in rep_started:
                now = time.monotonic()
                if rep > 0 and deadline and (rep - 1) in rep_started:
                    last = now - rep_started[rep - 1]
                    if time.time() + last > deadline:
                        status = {"completed_repetitions": rep, "truncated": True,
                                  "reason": f"at the previous repetition's pace ({last / 60:.0f} min) repetition "
                                            f"{rep + 1} would have ended {(time.time() + last - t0) / 60:.0f} min "
                                            f"after the start, past the {budget} min budget for the whole run"}
                        log(f"time budget: stopping after {rep} repetition(s)")
                        break
                rep_started[rep] = now
            path = out / "runs" / f"{r['id']}.json"
            seed = rep
            args = train_args(cfg, ds, v, seed)
            key = {"args": args, "parts": P, "cap": cap, "source": dataset_source(ds),
                   "partition_method": ds["partition_method"], "threads": cfg["threads_per_rank"]}
            if resume and path.exists():
                try:
                    if read_json(path)["bench"]["key"] == key:
                        continue
                except (KeyError, ValueError):
                    pass
            if group != (rep, P, cap) or cluster.current is None:
                cluster.up(P, cap)
                group = (rep, P, cap)
                if cap not in caps and P >= 2:
                    fwd = cluster.measure(cfg["measure_seconds"])
                    rev = cluster.measure(cfg["measure_seconds"], reverse=True)
                    caps[cap] = {"nominal": cap, "forward": fwd, "reverse": rev,
                                 "mbit_s": (fwd["mbit_s"] + rev["mbit_s"]) / 2, "hosts": P}
                    write_json(caps_path, caps)
                    log(f"measured {cap}: {fwd['mbit_s']} / {rev['mbit_s']} Mbit/s ({fwd['tool']})")
            tmp_json = out / "runs" / f"{r['id']}.halo.json"
            tmp_json.parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(CLUSTER), "mpirun", "-np", str(P), "--bind-to", "none", halo, "train", "--transport", "mpi",
                   "--partitions", str(parts_dir / f"{ds['name']}-p{P}"),
                   "--threads", str(cfg["threads_per_rank"])] + args + ["--quiet", "--json-out", str(tmp_json)]
            elapsed = time.monotonic() - t_matrix
            eta = ""
            if done_walls:
                eta = f", ~{(sum(done_walls) / len(done_walls)) * (total - i) / 60:.0f} min left"
            log(f"run {i + 1}/{total} {r['id']} ({elapsed / 60:.1f} min in{eta})")
            result = None
            for attempt in (1, 2):
                before = CpuSnapshot()
                rlog = out / "logs" / f"{r['id']}.log"
                rc, wall = run_logged(cmd, rlog, cfg["run_timeout_s"], env)
                after = CpuSnapshot()
                if rc == 0 and tmp_json.exists():
                    result = read_json(tmp_json)
                    tmp_json.unlink()
                    break
                log(f"  failed (exit {rc}, attempt {attempt}): {tail(rlog, 4)}")
                # A failed job may leave orted/ranks behind in the namespaces: start the cluster afresh.
                cluster.down()
                cluster.up(P, cap)
            done_walls.append(wall)
            bench = {"id": r["id"], "dataset": ds["name"], "parts": P, "cap": cap, "variant": v["label"],
                     "method": v["method"], "assign": v["assign"], "flags": v["flags"], "rep": rep, "seed": seed,
                     "key": key,
                     "wall_s": wall, "exit_status": rc, "load1_start": before.load1, "load1_end": after.load1,
                     "other_cpu_cores": after.others_since(before),
                     "command": shlex.join(["scripts/netns/cluster.sh"] + cmd[1:])}
            write_json(path, {"bench": bench, "report": result})
            if result is None:
                log(f"  giving up on {r['id']}; recorded as failed")
    finally:
        cluster.down()
    return status


# ---------------------------------------------------------------------------------------------- peer, micro

def run_peer(cfg: dict, halo: str, py: str | None, out: Path) -> None:
    """PyG (bench/pyg_peer.py) and `halo train` single-process, same model, same threads, alternated."""
    pc = cfg["peer"]
    m = cfg["model"]
    threads = pc.get("threads", 2)
    common = ["--model", m["model"], "--layers", str(m["layers"]), "--hidden", str(m["hidden"]),
              "--dropout", str(m["dropout"]), "--lr", str(m["lr"]), "--weight-decay", str(m["weight_decay"]),
              "--epochs", str(pc["epochs"])]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for ds in cfg["datasets"]:
        if not ds.get("peer"):
            continue
        src = dataset_source(ds)
        for rep in range(pc.get("repetitions", 1)):
            jobs = [("halo", [halo, "train", "--dataset", src] + common + ["--seed", str(rep), "--norm", m["norm"],
                                                                           "--threads", str(threads), "--quiet"])]
            if py:
                jobs.append(("pyg", [py, str(REPO / "bench" / "pyg_peer.py"), "--dataset", src] + common
                             + ["--seed", str(rep), "--threads", str(threads), "--quiet"]))
            if rep % 2 == 1:
                jobs.reverse()
            for fw, cmd in jobs:
                name = f"{fw}-{ds['name']}-r{rep}"
                tmp = out / "peer" / f"{name}.raw.json"
                tmp.parent.mkdir(parents=True, exist_ok=True)
                log(f"peer: {name}")
                before = CpuSnapshot()
                plog = out / "logs" / f"peer-{name}.log"
                rc, wall = run_logged(cmd + ["--json-out", str(tmp)], plog, cfg["run_timeout_s"], env)
                after = CpuSnapshot()
                result = read_json(tmp) if (rc == 0 and tmp.exists()) else None
                if tmp.exists():
                    tmp.unlink()
                if result is None:
                    log(f"  peer run failed ({rc}): {tail(plog, 4)}")
                shown = [("bench/pyg_peer.py" if c.endswith("pyg_peer.py") else c) for c in cmd]
                shown[0] = "python" if fw == "pyg" else "halo"
                write_json(out / "peer" / f"{name}.json", {
                    "bench": {"framework": fw, "dataset": ds["name"], "rep": rep, "wall_s": wall, "exit_status": rc,
                              "threads": threads, "other_cpu_cores": after.others_since(before),
                              "command": shlex.join(shown + ["--json-out", "FILE"])},
                    "report": result})


def run_microbench(cfg: dict, halo: str, out: Path) -> None:
    mb = cfg["microbench"]
    name = mb.get("dataset") or cfg["datasets"][0]["name"]
    ds = next((d for d in cfg["datasets"] if d["name"] == name), None)
    src = dataset_source(ds) if ds else name
    cmd = [halo, "microbench", "--dataset", src, "--width", str(mb.get("width", 256)),
           "--threads", str(mb.get("threads", 2)), "--repeats", str(mb.get("repeats", 5))]
    tmp = out / "microbench.raw.json"
    log(f"microbench on {name}")
    rc, wall = run_logged(cmd + ["--json-out", str(tmp)], out / "logs" / "microbench.log", 1200)
    result = read_json(tmp) if (rc == 0 and tmp.exists()) else None
    if tmp.exists():
        tmp.unlink()
    write_json(out / "microbench.json", {"bench": {"dataset": name, "wall_s": wall, "exit_status": rc,
                                                   "command": shlex.join(["halo"] + cmd[1:] + ["--json-out", "FILE"])},
                                         "report": result})
