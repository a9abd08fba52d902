#!/usr/bin/env bash
# Idempotently create the Python venv used by bench/pyg_peer.py (the PyTorch Geometric peer).
#
# Usage: bench/setup_pyg_venv.sh [VENV_DIR]     (default: <repo root>/.build-pyg-venv, git-ignored)
#        WITH_TORCH_SPARSE=1 bench/setup_pyg_venv.sh [VENV_DIR]
# Prints the venv's python path as its last line of stdout (progress goes to stderr).
#
# Torch is pinned to the CPU-only build "2.13.0+cpu": an unpinned `pip install torch` resolves to the
# default Linux wheel, which drags in several GB of CUDA libraries a CPU-only machine never uses.
# PyPI itself only lists the plain 2.13.0 (CUDA) wheel; "2.13.0+cpu" is found through the machine's
# pip configuration (its find-links wheelhouse, /opt/wheels here), so no --index-url is passed and
# nothing outside that configuration is contacted.
#
# torch_geometric is pure Python. Its compiled companions (torch_scatter, torch_sparse, pyg_lib) have
# no PyPI wheels for this torch -- they live on a separate wheel host we do not use -- and pyg_peer.py
# does not need them: its default path reaches the same native CSR kernel that PyG's SparseTensor path
# ends in. WITH_TORCH_SPARSE=1 additionally builds torch_scatter + torch_sparse from their PyPI sdists
# so `pyg_peer.py --adj sparse_tensor` can be measured too; that compiles C++ for ~30 minutes on two
# cores, hence opt-in.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
venv="${1:-$repo_root/.build-pyg-venv}"
# A relative VENV_DIR means "relative to the repo root", like the default.
case "$venv" in /*) ;; *) venv="$repo_root/$venv" ;; esac

TORCH_VERSION="2.13.0+cpu"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv at $venv" >&2
    "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
pip_install() { "$py" -m pip install --quiet --disable-pip-version-check "$@" >&2; }

# Skip pip when the pinned torch and PyG are already importable, so re-runs are fast and offline.
if "$py" -c "import sys, torch, torch_geometric; sys.exit(torch.__version__ != '$TORCH_VERSION')" 2>/dev/null; then
    echo "torch $TORCH_VERSION and torch_geometric already installed in $venv" >&2
else
    if ! pip_install "torch==$TORCH_VERSION" torch_geometric; then
        echo "error: could not install torch==$TORCH_VERSION; this pin is served by the machine's pip" >&2
        echo "       find-links wheelhouse (see 'pip config list'), not by PyPI's own index" >&2
        exit 1
    fi
    # Fail loudly if pip picked a CUDA or otherwise different build.
    "$py" -c "import torch, torch_geometric as g; assert torch.__version__ == '$TORCH_VERSION', torch.__version__; print('torch', torch.__version__, 'torch_geometric', g.__version__)" >&2
fi

if [ "${WITH_TORCH_SPARSE:-0}" = 1 ]; then
    if "$py" -c "import torch_geometric.typing as t, sys; sys.exit(not t.WITH_TORCH_SPARSE)" 2>/dev/null; then
        echo "torch_sparse already usable in $venv" >&2
    else
        echo "building torch_scatter + torch_sparse from source (slow)" >&2
        # --no-build-isolation: their setup.py imports torch and must compile against *this* torch.
        # scipy is a runtime import of torch_sparse.
        pip_install setuptools wheel scipy
        MAX_JOBS="${MAX_JOBS:-2}" FORCE_ONLY_CPU=1 pip_install --no-build-isolation torch_scatter torch_sparse
        "$py" -c "import torch_geometric.typing as t; assert t.WITH_TORCH_SPARSE and t.WITH_TORCH_SCATTER" >&2
    fi
fi

echo "$py"
