#!/usr/bin/env python3
"""PyTorch Geometric peer for Halo's speed/accuracy comparison.

Loads a dataset in the `halo-dataset` v1 format (see shared/datasets/README.md) with numpy only -- no
PyG dataset downloads -- and trains a full-graph GCN or GraphSAGE on the CPU in one process.

The point is a *fair* peer, so it uses the fastest CPU setup PyG offers on this machine rather than the
tutorial one. Which representation is fastest was measured with bench/pyg_repr_sweep.py (numbers in
bench/PYG_PEER.md); `--adj auto --features auto` picks the winners, and the explicit values exist so the
sweep can re-measure the losers.

Model (standard Kipf & Welling GCN / Hamilton et al. SAGE, deliberately *no* LayerNorm, BatchNorm,
residuals or input dropout, so the peer matches Halo's reference architecture):
    hidden layers: conv -> ReLU -> dropout;  last layer: plain conv;
    loss: softmax cross-entropy over the train mask;  optimiser: Adam (weight decay on all parameters).

Timing: one epoch = one training step (forward + backward + optimiser step), timed with
time.perf_counter() and excluding evaluation (`epoch_time_median_s`); the evaluation after it (forward
without dropout, accuracies) is timed too, and `evaluated_epoch_time_median_s` is the median of the two
together. The reported figures are medians over the epochs after WARMUP_EPOCHS, so one-off costs (allocator
growth, first-call dispatch) do not count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import torch_geometric
from torch_geometric import EdgeIndex
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

WARMUP_EPOCHS = 3

# torch warns once per process that sparse CSR support is "beta"; the kernels used here are stable.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

# Features are handed to the first layer as a CSR tensor only below this density: above it a dense
# GEMM beats MKL's sparse kernel anyway (and the brief's threshold is ~10%).
SPARSE_FEATURE_MAX_DENSITY = 0.10

# csr / sparse: torch.sparse_csr driven through torch.sparse.mm(..., reduce="sum") (see CSRGCNConv);
# csr_mkl / sparse_mkl: the same tensors through PyG's stock code path, which lands in MKL's SpMM.
ADJ_CHOICES = ("auto", "csr", "csr_mkl", "sparse_tensor", "edge_index_sorted", "edge_index")
FEATURE_CHOICES = ("auto", "sparse", "sparse_mkl", "dense")


# ----------------------------------------------------------------------------------------------------
# Dataset loading
# ----------------------------------------------------------------------------------------------------

def _read(path: str, dtype, count: int) -> np.ndarray:
    """Read a headerless little-endian binary and insist on its exact element count."""
    arr = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))
    if arr.size != count:
        raise ValueError(f"{path}: expected {count} elements of {dtype}, found {arr.size}")
    return arr


def load_halo_dataset(directory: str) -> dict:
    """Load and validate one halo-dataset directory into numpy arrays."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != "halo-dataset" or meta.get("format_version") != 1:
        raise ValueError(f"{directory}: not a halo-dataset v1 directory")
    if meta.get("multilabel"):
        raise ValueError(f"{directory}: multi-label datasets are not supported by this peer")

    n = int(meta["num_nodes"])
    e = int(meta["num_edges_directed"])
    f_dim = int(meta["num_features"])
    c = int(meta["num_classes"])
    p = lambda name: os.path.join(directory, name)  # noqa: E731

    edges = _read(p("edges.i32"), np.int32, 2 * e).reshape(e, 2)
    if e and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"{directory}: edge endpoint out of range [0, {n})")

    labels = _read(p("labels.i32"), np.int32, n)
    if labels.min() < -1 or labels.max() >= c:
        raise ValueError(f"{directory}: label out of range [-1, {c})")

    masks = {}
    for split in ("train", "val", "test"):
        m = _read(p(f"{split}_mask.u8"), np.uint8, n)
        if m.max() > 1:
            raise ValueError(f"{directory}: {split}_mask is not 0/1")
        masks[split] = m.astype(bool)
        if (labels[masks[split]] < 0).any():
            raise ValueError(f"{directory}: {split}_mask contains an unlabelled node")

    if os.path.exists(p("feat_indptr.i64")):
        nnz = int(meta["feature_nnz"])
        indptr = _read(p("feat_indptr.i64"), np.int64, n + 1)
        indices = _read(p("feat_indices.i32"), np.int32, nnz)
        values = _read(p("feat_values.f32"), np.float32, nnz)
        if indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any():
            raise ValueError(f"{directory}: malformed feat_indptr")
        if nnz and (indices.min() < 0 or indices.max() >= f_dim):
            raise ValueError(f"{directory}: feature index out of range [0, {f_dim})")
        features = ("csr", indptr, indices, values)
        density = nnz / float(n * f_dim)
    else:
        dense = _read(p("features.f32"), np.float32, n * f_dim).reshape(n, f_dim)
        features = ("dense", dense)
        density = float(np.count_nonzero(dense)) / float(n * f_dim)

    return dict(meta=meta, num_nodes=n, num_features=f_dim, num_classes=c, edges=edges,
                labels=labels, masks=masks, features=features, feature_density=density)


# ----------------------------------------------------------------------------------------------------
# Graph / feature representations
# ----------------------------------------------------------------------------------------------------

def resolve_feature_repr(choice: str, model: str, density: float) -> str:
    if choice == "auto":
        # SAGEConv aggregates *before* its linear layer, so its input must be a dense tensor that
        # message passing can gather from; only GCN (linear first) can consume CSR features.
        return "sparse" if (model == "gcn" and density < SPARSE_FEATURE_MAX_DENSITY) else "dense"
    if choice in ("sparse", "sparse_mkl") and model != "gcn":
        raise ValueError("--features sparse is only supported with --model gcn "
                         "(SAGEConv aggregates raw features before its linear layer)")
    return choice


def resolve_adj_repr(choice: str) -> str:
    if choice == "auto":
        # torch.sparse CSR through the native reduce kernel won the measurements (bench/PYG_PEER.md).
        # SparseTensor reaches the very same kernel (PyG converts it to torch CSR on every call) but
        # needs the torch_sparse extension; edge_index / EdgeIndex gather + scatter a message per edge.
        return "csr"
    if choice == "sparse_tensor" and not WITH_TORCH_SPARSE:
        raise ValueError("--adj sparse_tensor needs the torch_sparse extension, which is not installed")
    return choice


def build_features(data: dict, repr_: str) -> torch.Tensor:
    kind = data["features"][0]
    n, f_dim = data["num_nodes"], data["num_features"]
    if kind == "csr":
        _, indptr, indices, values = data["features"]
        csr = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(indices.astype(np.int64)),
                                      torch.from_numpy(values), size=(n, f_dim), check_invariants=True)
        return csr if repr_ != "dense" else csr.to_dense()
    dense = torch.from_numpy(data["features"][1].copy())
    return dense.to_sparse_csr() if repr_ != "dense" else dense


def build_graph(data: dict, model: str, repr_: str):
    """Return (adj, edge_weight) in the form the convs' forward() takes.

    PyG's sparse adjacency is the *transposed* one (row = target node), so rows are edge_index[1].
    For GCN the symmetric normalisation D^-1/2 (A + I) D^-1/2 is computed once here with PyG's own
    gcn_norm -- exactly what GCNConv(cached=True) would cache -- and the convs run with normalize=False.
    """
    n = data["num_nodes"]
    # Halo stores (src, dst); PyG's edge_index is [2, E] with row 0 = source, row 1 = target.
    edge_index = torch.from_numpy(data["edges"].T.astype(np.int64)).contiguous()
    if model == "gcn":
        edge_index, weight = gcn_norm(edge_index, None, n, improved=False, add_self_loops=True,
                                      flow="source_to_target", dtype=torch.float32)
    else:
        weight = torch.ones(edge_index.size(1))  # SAGE "mean" only needs the structure.

    if repr_ == "edge_index":
        return edge_index, (weight if model == "gcn" else None)

    if repr_ == "edge_index_sorted":
        # Sorted by target ("col") so aggregation can use a CSC pointer (segment reduce) instead of scatter.
        ei, perm = EdgeIndex(edge_index, sparse_size=(n, n)).sort_by("col")
        w = weight[perm] if perm is not None else weight
        return ei, (w if model == "gcn" else None)

    # Sparse matrices, rows = targets: sort by (target, source) once.
    target, source = edge_index[1], edge_index[0]
    order = torch.argsort(target * n + source)
    target, source, weight = target[order], source[order], weight[order]
    if repr_ in ("csr", "csr_mkl"):
        crow = torch.zeros(n + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.bincount(target, minlength=n), 0)
        adj_t = torch.sparse_csr_tensor(crow, source, weight, size=(n, n), check_invariants=True)
        return adj_t, None
    if repr_ == "sparse_tensor":
        adj_t = SparseTensor(row=target, col=source, value=weight if model == "gcn" else None,
                             sparse_sizes=(n, n), is_sorted=True)
        return adj_t, None
    raise ValueError(f"unknown adjacency representation {repr_!r}")


# ----------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------

class CSRGCNConv(GCNConv):
    """GCNConv whose sparse aggregation calls torch.sparse.mm(adj_t, x, reduce="sum").

    Why: PyG's spmm() sends a torch.sparse "sum" product to plain torch.sparse.mm(adj_t, x) (MKL's CSR
    SpMM), but sends a torch_sparse.SparseTensor to torch.sparse.mm(csr, x, reduce) -- PyTorch's native
    CSR SpMM, which measured ~1.5x faster forward+backward on this machine (bench/PYG_PEER.md). Calling it
    directly gives the SparseTensor path's kernel without the torch_sparse extension (no PyPI wheel for
    this torch; a ~30 min source build). Numerically the same operation.
    """

    def message_and_aggregate(self, adj_t, x):
        if isinstance(adj_t, torch.Tensor) and adj_t.layout == torch.sparse_csr:
            return torch.sparse.mm(adj_t, x, "sum")
        return super().message_and_aggregate(adj_t, x)


class CSRInputLinear(torch.nn.Module):
    """Bias-free first-layer linear map for CSR features: X (sparse) @ W (dense) -> dense.

    Stock GCNConv runs its Linear through F.linear, which accepts a CSR input but goes through MKL
    (and a transposed product in the backward); torch.sparse.mm(X, W, reduce="sum") is the native
    kernel, measured ~1.4x faster forward+backward here. The weight is stored [in, out] so no
    transpose copy is needed per step.
    """

    def __init__(self, linear: torch.nn.Module):
        super().__init__()
        # Start from the replaced Linear's (glorot) weights so every representation trains from the
        # exact same initial model -- accuracy must not depend on the representation choice.
        self.weight = torch.nn.Parameter(linear.weight.detach().t().contiguous())

    def reset_parameters(self):  # called by GCNConv.reset_parameters(); keep the copied init
        pass

    def forward(self, x):
        if x.layout == torch.sparse_csr:
            return torch.sparse.mm(x, self.weight, "sum")
        return x @ self.weight


class Net(torch.nn.Module):
    """Plain Kipf & Welling GCN / GraphSAGE stack.

    No normalisation layers (no LayerNorm/BatchNorm) and no dropout on the input features: the
    comparison is against Halo's reference architecture (conv -> ReLU -> dropout for hidden layers,
    plain conv last).
    """

    def __init__(self, model: str, in_dim: int, hidden: int, out_dim: int, layers: int, dropout: float,
                 adj_repr: str = "csr", feat_repr: str = "dense"):
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        if model == "gcn":
            conv_cls = CSRGCNConv if adj_repr == "csr" else GCNConv
            # normalize=False: the normalised adjacency was precomputed once in build_graph().
            convs = [conv_cls(a, b, normalize=False) for a, b in zip(dims[:-1], dims[1:])]
            if feat_repr == "sparse":
                convs[0].lin = CSRInputLinear(convs[0].lin)
        else:
            convs = [SAGEConv(a, b, aggr="mean") for a, b in zip(dims[:-1], dims[1:])]
        self.convs = torch.nn.ModuleList(convs)
        self.is_gcn = model == "gcn"
        self.dropout = dropout

    def forward(self, x, adj, edge_weight=None):
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x, adj, edge_weight) if self.is_gcn else conv(x, adj)
            if i < last:
                x = F.relu(x)
                x = F.dropout(x, p=self.dropout, training=self.training)
        return x


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------

class ForeignLoad:
    """Average number of cores used by *other* processes over an interval.

    The benchmark machine is shared (builds, test suites); a timing taken while neighbours were busy
    is not comparable, so the result records how busy they were. Linux only; None elsewhere.
    """

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None
        busy = sum(fields) - fields[3] - fields[4]  # everything but idle and iowait
        return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()

    def cores(self):
        end = self._sample()
        if self.start is None or end is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, (busy - own) / wall) if wall > 0 else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)

    data = load_halo_dataset(args.dataset)
    model_name = args.model
    feat_repr = resolve_feature_repr(args.features, model_name, data["feature_density"])
    adj_repr = resolve_adj_repr(args.adj)

    x = build_features(data, feat_repr)
    adj, edge_weight = build_graph(data, model_name, adj_repr)
    y = torch.from_numpy(data["labels"].astype(np.int64))
    masks = {k: torch.from_numpy(v) for k, v in data["masks"].items()}
    train_idx = masks["train"].nonzero().view(-1)  # index once rather than boolean-masking every step
    y_train = y[train_idx]

    model = Net(model_name, data["num_features"], args.hidden, data["num_classes"], args.layers,
                args.dropout, adj_repr=adj_repr, feat_repr=feat_repr)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    history, epoch_times, evaluation_times = [], [], []
    best_val, test_at_best_val = -1.0, 0.0
    foreign = ForeignLoad()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = model(x, adj, edge_weight)
        loss = F.cross_entropy(out[train_idx], y_train)
        loss.backward()
        optimizer.step()
        dt = time.perf_counter() - t0  # CPU ops are synchronous, so this is the full step
        epoch_times.append(dt)

        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            pred = model(x, adj, edge_weight).argmax(dim=-1)
        accs = {k: float((pred[m] == y[m]).float().mean()) for k, m in masks.items()}
        evaluation_times.append(time.perf_counter() - t1)
        if accs["val"] > best_val:  # strict: the first epoch reaching the best val accuracy wins
            best_val, test_at_best_val = accs["val"], accs["test"]
        history.append(dict(epoch=epoch, loss=loss.item(), train_acc=accs["train"], val_acc=accs["val"],
                            test_acc=accs["test"], time_s=dt, evaluation_s=evaluation_times[-1]))
        if not args.quiet:
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}  train {accs['train']:.4f}  "
                  f"val {accs['val']:.4f}  test {accs['test']:.4f}  step {dt * 1e3:8.2f} ms", flush=True)

    foreign_cores = foreign.cores()
    timed = epoch_times[WARMUP_EPOCHS:] or epoch_times
    with_evaluation = [t + e for t, e in zip(epoch_times, evaluation_times)]
    with_evaluation = with_evaluation[WARMUP_EPOCHS:] or with_evaluation
    feat_desc = {
        "sparse": "features as torch.sparse_csr, first layer torch.sparse.mm(X, W, reduce='sum')",
        "sparse_mkl": "features as torch.sparse_csr, first layer stock F.linear (MKL SpMM)",
        "dense": "features as dense float32 [N, F]",
    }[feat_repr]
    adj_desc = {
        "csr": "adjacency as torch.sparse_csr adj_t, aggregation torch.sparse.mm(adj_t, x, reduce='sum')"
               if model_name == "gcn" else "adjacency as torch.sparse_csr adj_t (PyG spmm, reduce='mean')",
        "csr_mkl": "adjacency as torch.sparse_csr adj_t through stock PyG spmm (MKL SpMM)",
        "sparse_tensor": "adjacency as torch_sparse.SparseTensor adj_t",
        "edge_index_sorted": "adjacency as PyG EdgeIndex sorted by target (gather + segment reduce)",
        "edge_index": "adjacency as plain edge_index (gather + scatter)",
    }[adj_repr]
    norm_desc = ("GCN normalisation D^-1/2 (A+I) D^-1/2 precomputed once with gcn_norm, GCNConv(normalize=False)"
                 if model_name == "gcn" else "SAGEConv aggr=mean")
    return {
        "framework": "pyg",
        "torch_version": torch.__version__,
        "pyg_version": torch_geometric.__version__,
        "threads": torch.get_num_threads(),
        "config": dict(dataset=os.path.basename(os.path.normpath(args.dataset)), model=model_name,
                       layers=args.layers, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
                       weight_decay=args.weight_decay, epochs=args.epochs, seed=args.seed,
                       adj=adj_repr, features=feat_repr, warmup_epochs=WARMUP_EPOCHS),
        "epoch_time_median_s": statistics.median(timed),
        # The step and the evaluation after it (forward without dropout, accuracies): an epoch that reports scores.
        "evaluated_epoch_time_median_s": statistics.median(with_evaluation),
        "epoch_times_s": epoch_times,
        "best_val_accuracy": best_val,
        "test_accuracy_at_best_val": test_at_best_val,
        "final_test_accuracy": history[-1]["test_acc"] if history else None,
        "setup": f"{adj_desc}; {feat_desc} (density {data['feature_density']:.4f}); {norm_desc}; "
                 f"full-graph, CPU, {torch.get_num_threads()} threads, single process",
        "foreign_cpu_cores_during_run": foreign_cores,
        # The process's peak resident set (Linux reports ru_maxrss in KiB).
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "history": history,
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="halo-dataset directory")
    ap.add_argument("--model", choices=("gcn", "sage"), default="gcn")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--adj", choices=ADJ_CHOICES, default="auto",
                    help="adjacency representation (auto = fastest measured)")
    ap.add_argument("--features", choices=FEATURE_CHOICES, default="auto",
                    help="feature representation (auto = sparse for GCN when density < 10%%, else dense)")
    ap.add_argument("--json-out", help="write the result JSON here")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = ap.parse_args(argv)
    if args.layers < 1:
        ap.error("--layers must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except ValueError as e:  # bad data or an impossible flag combination: say so without a traceback
        print(f"pyg_peer.py: error: {e}", file=sys.stderr)
        return 2
    summary = {k: result[k] for k in ("epoch_time_median_s", "best_val_accuracy",
                                      "test_accuracy_at_best_val", "final_test_accuracy",
                                      "foreign_cpu_cores_during_run", "setup")}
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
