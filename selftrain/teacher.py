"""The label-spreading teacher: a kNN graph over every row, built once per fit.

Label spreading sees the data's shape, which corrects the base estimator's bias towards
easy classes. Its graph depends on the features only, never on labels, so one graph
serves every round and every fold of the guard (a fold's held-out rows stay in the graph
as unlabeled nodes and are never pseudo-labeled). scikit-learn's ``LabelSpreading`` does
the spreading; its kernel is a callable that hands it the cached graph.

Above ``TEACHER_MAX_ROWS`` rows the graph costs too much time and memory (a kNN search
over all rows, and a dense label matrix per round): the estimator turns the teacher off
with one warning and self-trains without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

TEACHER_MAX_ROWS = 50_000
N_NEIGHBORS = 7
ALPHA = 0.2


class GraphTeacher:
    """Label distributions of pool rows, spread over a fixed kNN graph of ``X``."""

    def __init__(self, X, rows: np.ndarray | None = None, graph=None):
        if graph is None:
            scaled = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
            graph = NearestNeighbors(n_neighbors=N_NEIGHBORS).fit(scaled).kneighbors_graph(
                scaled, N_NEIGHBORS, mode="connectivity")
        self.graph = graph
        self.rows = rows  # positions of the caller's rows in the graph (a fold's subset)

    def save(self, path) -> None:
        """The graph as one ``.npz`` (scipy sparse, no pickle), written atomically."""
        tmp = Path(f"{path}.tmp.npz")
        sparse.save_npz(tmp, self.graph)
        tmp.replace(path)

    @classmethod
    def load(cls, path) -> GraphTeacher:
        return cls(None, graph=sparse.load_npz(path))

    def view(self, rows: np.ndarray) -> GraphTeacher:
        """The same graph for a subset of the rows (a fold): labels of the other rows are
        unknown to it."""
        inner = rows if self.rows is None else self.rows[rows]
        return GraphTeacher(None, inner, self.graph)

    def proba(self, y: np.ndarray, pool: np.ndarray, n_classes: int) -> np.ndarray:
        """(len(pool), n_classes) spread label distributions; ``y`` holds class indices of
        the caller's rows (-1 = unlabeled), ``pool`` positions among them."""
        n = self.graph.shape[0]
        labels = np.full(n, -1, dtype=np.int64)
        if self.rows is None:
            labels[:] = y
            nodes = pool
        else:
            labels[self.rows] = y
            nodes = self.rows[pool]
        spreader = LabelSpreading(kernel=self._kernel, alpha=ALPHA, max_iter=100)
        spreader.fit(np.zeros((n, 1)), labels)
        full = np.zeros((len(pool), n_classes))
        full[:, spreader.classes_] = spreader.label_distributions_[nodes]
        return full

    def _kernel(self, _X, _Y):
        return self.graph
