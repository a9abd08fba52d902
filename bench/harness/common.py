"""Shared pieces of the benchmark harness: configuration, machine description, load monitoring, statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------ config

def load_config(path: str | os.PathLike) -> dict:
    """A JSON configuration (see default.json); relative paths in it are relative to the repository root."""
    with open(path) as f:
        cfg = json.load(f)
    cfg.setdefault("name", Path(path).stem)
    cfg.setdefault("repetitions", 3)
    cfg.setdefault("variants", ["vanilla", "adaqp-p", "adaqp-q", "adaqp"])
    cfg.setdefault("parts", [2, 4])
    cfg.setdefault("caps", ["100mbit", "1gbit"])
    cfg.setdefault("threads_per_rank", 1)
    cfg.setdefault("target_fraction", 0.98)
    cfg.setdefault("measure_seconds", 3)
    cfg.setdefault("run_timeout_s", 900)
    cfg.setdefault("cluster_wait_s", 600)
    cfg.setdefault("model", {})
    m = cfg["model"]
    for k, v in dict(model="gcn", layers=3, hidden=256, dropout=0.5, lr=0.01, weight_decay=0.0,
                     norm="none").items():
        m.setdefault(k, v)
    for ds in cfg["datasets"]:
        ds.setdefault("partition_method", "metis")
        ds.setdefault("epochs", 20)
        ds.setdefault("eval_every", 1)
        ds.setdefault("assign_cycle", max(1, ds["epochs"] // 5))   # ~5 cycles, the first at 8 bits
        ds.setdefault("peer", False)
        ds.setdefault("label", ds["name"])
    cfg["ablations"] = ablation_groups(cfg)
    for g in cfg["ablations"]:
        g.setdefault("datasets", [d["name"] for d in cfg["datasets"]])
        g.setdefault("parts", list(cfg["parts"]))
        g.setdefault("caps", list(cfg["caps"]))
        g.setdefault("repetitions", 1)
    for v in cfg["variants"] + [v for g in cfg["ablations"] for v in g["variants"]]:
        parse_variant(v)   # an unknown method or option fails here, not an hour into the run
    cfg.setdefault("peer", {"threads": 2, "epochs": 50, "repetitions": 1})
    cfg.setdefault("microbench", {"dataset": None, "threads": 2, "repeats": 5, "width": 256})
    return cfg


METHODS = ("vanilla", "adaqp-p", "adaqp-q", "adaqp", "pipegcn", "pipeqs")
PIPELINED = ("pipegcn", "pipeqs")

# A variant is 'method' or 'method/option+option…'; each option is 'name' or 'name:value' and stands for the
# `halo train` flags below ('{}' = the value). Assignment schemes replace the --assign every run passes.
VARIANT_OPTIONS = {
    "adaptive": ["--assign", "adaptive"],
    "uniform": ["--assign", "uniform:{}"],
    "random": ["--assign", "random"],
    "no-bypass": ["--no-bypass"],
    "no-adaptive-bits": ["--no-adaptive-bits"],
    "bits": ["--initial-bits", "{}"],
    "staleness": ["--max-staleness", "{}"],
    "drift": ["--drift-threshold", "{}"],
    "warmup": ["--pipeline-warmup", "{}"],
    "smoothing": ["--smoothing", "{}"],
    "bypassed-gradients": ["--bypassed-gradients", "{}"],
    "grad": ["--grad-compression", "{}"],
    "no-overlap": ["--no-overlap-allreduce"],
    "pieces": ["--weight-gradient-pieces", "{}"],
}


def parse_variant(label: str) -> dict:
    """'adaqp' → method adaqp, adaptive assignment; 'adaqp/uniform:4' → method adaqp, --assign uniform:4;
    'pipeqs/no-bypass' → method pipeqs, --no-bypass; 'pipeqs/no-adaptive-bits+bits:4' → method pipeqs,
    --no-adaptive-bits --initial-bits 4."""
    method, _, suffix = label.partition("/")
    if method not in METHODS:
        raise ValueError(f"variant {label!r}: unknown method {method!r} (known: {', '.join(METHODS)})")
    assign, flags = "adaptive", []
    for opt in filter(None, suffix.split("+")):
        name, colon, value = opt.partition(":")
        spec = VARIANT_OPTIONS.get(name)
        if spec is None or any("{}" in a for a in spec) != bool(colon) or (colon and not value):
            raise ValueError(f"variant {label!r}: option {opt!r} is not one of "
                             + ", ".join(k + (":VALUE" if any("{}" in a for a in v) else "")
                                         for k, v in VARIANT_OPTIONS.items()))
        args = [a.replace("{}", value) for a in spec]
        if args[0] == "--assign":
            assign = args[1]
        else:
            flags += args
    return {"label": label, "method": method, "assign": assign, "flags": flags,
            "pipelined": method in PIPELINED}


def variant_flags(v: dict) -> list[str]:
    """The flags a variant adds to `halo train` beyond the model and schedule (for the document)."""
    return ["--method", v["method"]] + (["--assign", v["assign"]] if v["assign"] != "adaptive" else []) + v["flags"]


def ablation_groups(cfg: dict) -> list[dict]:
    """cfg["ablations"]: one group {variants, datasets, parts, caps, repetitions} or a list of them (None: none).
    Each group's variants run after the main ones in every cell the group names, in its first `repetitions`."""
    abl = cfg.get("ablations")
    if not abl:
        return []
    return [abl] if isinstance(abl, dict) else list(abl)


def dataset_source(ds: dict) -> str:
    src = ds["source"]
    if src.startswith("synthetic:") or os.path.isabs(src):
        return src
    return str((REPO / src).resolve())


# -------------------------------------------------------------------------------------------- statistics

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mn(xs):
    xs = [x for x in xs if x is not None]
    return min(xs) if xs else None


def mx(xs):
    xs = [x for x in xs if x is not None]
    return max(xs) if xs else None


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


# ---------------------------------------------------------------------------------------------- machine

def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# /proc/cpuinfo fields recorded, and their names in the machine record.
CPUINFO_FIELDS = {"cpu family": "cpu_family", "model": "cpu_model_number", "stepping": "cpu_stepping"}


def machine_info() -> dict:
    info: dict = {}
    try:
        # The first processor's entry: model name, family/model/stepping (the core generation a name like "AMD
        # EPYC" hides) and the vector ISA its flags advertise, so a number is never read without its machine.
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                info["cpu_model"] = value
            elif key in CPUINFO_FIELDS:
                info.setdefault(CPUINFO_FIELDS[key], value)
            elif key == "flags":
                flags = set(value.split())
                info["vector_isa"] = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
                                      else "AVX" if "avx" in flags else "SSE")
                info["avx512_extensions"] = sorted(f for f in flags if f.startswith("avx512"))
            elif not line.strip() and "cpu_model" in info:
                break
    except OSError:
        pass
    info.setdefault("cpu_model", platform.processor() or "unknown")
    info["cores"] = os.cpu_count()
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    info["kernel"] = platform.release()
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    lscpu = _run(["lscpu"])
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("Hypervisor vendor", "L3 cache", "L2 cache"):
            info[k.strip().lower().replace(" ", "_")] = v.strip()
    info["swift"] = (_run(["swift", "--version"]).splitlines() or ["?"])[0]
    info["openmpi"] = (_run(["mpirun", "--version"]).splitlines() or ["?"])[0]
    info["python"] = platform.python_version()
    info["git_commit"] = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    status = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    info["git_dirty_files"] = len([l for l in status.splitlines() if l.strip()])
    return info


# ------------------------------------------------------------------------------------------ load monitor

_CLK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (user, nice, system, irq, softirq) since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / _CLK


class OwnCgroup:
    """A cpuacct cgroup (v1) holding this process and so everything it starts: mpirun, the daemons and ranks it
    launches inside the namespaces (which getrusage misses: they are not waited for by our process tree), the
    PyG peer. Its usage is exactly the CPU time the benchmark itself consumed. Unavailable → None."""

    root = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self):
        self.path = None
        self.original = None
        try:
            for line in open("/proc/self/cgroup"):
                _, controllers, rel = line.strip().split(":", 2)
                if "cpuacct" in controllers.split(","):
                    self.original = self.root / rel.lstrip("/")
            if self.original is None or not (self.root / "cgroup.procs").exists():
                return
            for stale in self.root.glob("halo-bench-*"):   # left by a run that was killed: remove if empty
                try:
                    if not (stale / "cgroup.procs").read_text().strip():
                        stale.rmdir()
                except OSError:
                    pass
            path = self.root / f"halo-bench-{os.getpid()}"
            path.mkdir(exist_ok=True)
            (path / "cgroup.procs").write_text(f"{os.getpid()}\n")
            self.path = path
        except OSError:
            self.path = None

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        try:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        except OSError:
            return None

    def close(self) -> None:
        """Moves this process back and removes the group (left in place if something still runs in it)."""
        if self.path is None:
            return
        try:
            (self.original / "cgroup.procs").write_text(f"{os.getpid()}\n")
            self.path.rmdir()
        except OSError:
            pass
        self.path = None


_cgroup: OwnCgroup | None = None


def track_own_cpu() -> OwnCgroup:
    global _cgroup
    if _cgroup is None:
        _cgroup = OwnCgroup()
    return _cgroup


def _own_seconds() -> float:
    """CPU seconds the benchmark itself used: its cgroup's usage, else this process and its waited-for children."""
    if _cgroup is not None:
        v = _cgroup.seconds()
        if v is not None:
            return v
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class CpuSnapshot:
    """Machine-wide busy time and our own CPU time at one instant; the difference of two snapshots gives the
    cores other jobs kept busy in between (their noise in our timings)."""

    def __init__(self):
        self.t = time.monotonic()
        self.busy = _busy_seconds()
        self.own = _own_seconds()
        self.load1 = os.getloadavg()[0]

    def others_since(self, start: "CpuSnapshot") -> float | None:
        dt = self.t - start.t
        if dt <= 0.5:
            return None
        return max(0.0, ((self.busy - start.busy) - (self.own - start.own)) / dt)


class LoadMonitor(threading.Thread):
    """Samples the 1-minute load average every `period` seconds for the whole run."""

    def __init__(self, period: float = 10.0):
        super().__init__(daemon=True)
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()
        self.t0 = time.time()

    def run(self):
        while not self._halt.is_set():
            self.samples.append((time.time() - self.t0, os.getloadavg()[0]))
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()

    def summary(self) -> dict:
        loads = [l for _, l in self.samples]
        if not loads:
            return {}
        return {"samples": len(loads), "period_s": self.period, "min": min(loads), "median": median(loads),
                "max": max(loads), "mean": mean(loads)}


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)
