"""Write a graph as a gnn-benchmark .npz that `halo import npz` reads (see docs/importing.md).

From PyG:
    from torch_geometric.datasets import Planetoid
    data = Planetoid("data", "Cora")[0]
    save_gnn_benchmark("cora.npz", data.edge_index.numpy(), data.x.numpy(), data.y.numpy(),
                       data.train_mask.numpy(), data.val_mask.numpy(), data.test_mask.numpy())
From DGL:
    g = dgl.data.CoraGraphDataset()[0]
    src, dst = g.edges()
    save_gnn_benchmark("cora.npz", np.stack([src.numpy(), dst.numpy()]), g.ndata["feat"].numpy(),
                       g.ndata["label"].numpy(), g.ndata["train_mask"].numpy(),
                       g.ndata["val_mask"].numpy(), g.ndata["test_mask"].numpy())
Then: halo import npz cora.npz --out data/cora
"""
import sys

import numpy as np


def save_gnn_benchmark(path, edge_index, x, y, train_mask=None, val_mask=None, test_mask=None):
    """edge_index: (2, E) source and target ids; x: (n, f) features; y: (n,) class ids (-1: none)
    or (n, c) 0/1 targets; masks: (n,) booleans, or None for a split generated at import."""
    n = x.shape[0]
    src, dst = np.asarray(edge_index, dtype=np.int64)
    order = np.lexsort((dst, src))  # CSR: rows by source, columns by target
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
    arrays = dict(adj_indptr=indptr, adj_indices=dst[order], adj_data=np.ones(len(src), np.float32),
                  adj_shape=np.array([n, n]), attr_matrix=np.asarray(x, np.float32), labels=np.asarray(y))
    if train_mask is not None:
        arrays.update(train_mask=np.asarray(train_mask, bool), val_mask=np.asarray(val_mask, bool),
                      test_mask=np.asarray(test_mask, bool))
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    # Self-test used by Halo's test suite: a random graph of 200 nodes, 3 classes, 5 features, seeded.
    rng = np.random.default_rng(0)
    edges = rng.integers(0, 200, size=(2, 1000))
    features = rng.standard_normal((200, 5))
    labels = rng.integers(0, 3, size=200)
    masks = rng.permutation(np.repeat([0, 1, 2, 3], 50))
    save_gnn_benchmark(sys.argv[1], edges, features, labels, masks == 0, masks == 1, masks == 2)
