"""Random Forests walked a few trees at a time, for cache locality on deep real-label trees.

onnxruntime's tree-ensemble kernel takes one pixel through every tree before the next pixel.
A forest trained on real land-cover labels has 10,000-15,000 nodes per tree (depth 30-45), so
100 trees are tens of MB of nodes and nearly every node visit is a cache miss; scikit-learn,
which takes all pixels through one tree before the next, was 2x faster per core on the same
forest. Running the forest as groups of :data:`TREES_PER_GROUP` trees (one onnxruntime session
per group, each over the whole chunk of pixels) keeps a group's nodes in the CPU caches and
doubles the throughput per core.

The group probabilities are summed, so they equal the whole graph's up to float32 rounding
(about 1e-6). Classes are the whole graph's: the argmax of the summed probabilities wherever
the top two are clearly apart, and the whole graph itself for the few pixels whose top two
probabilities tie within :data:`TIE_MARGIN` (votes split evenly), where rounding could pick the
other class. Only plain forest graphs are grouped (one ``TreeEnsembleClassifier`` whose leaf
weights are summed without a transform, as scikit-learn's Random Forest and Extra Trees export);
any other model runs as one session.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..runtime import Log, no_log

#: Trees per onnxruntime session; 4-10 measured alike (about 1.7-2.1x the one-session speed per
#: core on a 30- and a 100-tree real-label forest), 1-2 add per-session overhead.
TREES_PER_GROUP = 8
#: Forests with fewer trees than this run as one session.
MIN_TREES = 2 * TREES_PER_GROUP
#: Pixels whose top two summed probabilities are closer than this are classified by the whole
#: graph (rounding differences between the two sums are about 1e-6).
TIE_MARGIN = 1e-4


def _forest_node(model):
    """The graph's single summing ``TreeEnsembleClassifier`` node, or None."""
    nodes = list(model.graph.node)
    if len(nodes) != 1 or nodes[0].op_type != "TreeEnsembleClassifier" or \
            nodes[0].domain != "ai.onnx.ml":
        return None
    attrs = {a.name: a for a in nodes[0].attribute}
    if attrs.get("post_transform") is not None and attrs["post_transform"].s not in (b"", b"NONE"):
        return None
    if any(name in attrs for name in ("base_values", "base_values_as_tensor",
                                      "nodes_values_as_tensor", "class_weights_as_tensor")):
        return None
    if "classlabels_int64s" not in attrs or len(attrs["classlabels_int64s"].ints) <= 2:
        return None  # two-class ensembles are scored specially by onnxruntime
    return nodes[0]


def _values(attribute):
    """The repeated field of a node attribute that holds its values."""
    for field in (attribute.ints, attribute.floats, attribute.strings):
        if len(field):
            return field
    return attribute.ints


def split_forest(model, trees_per_group: int = TREES_PER_GROUP) -> Optional[list]:
    """Splits a forest's ONNX graph into graphs of ``trees_per_group`` trees each.

    Returns:
        The group graphs (ModelProto), or None when the graph is not a plain forest of at least
        :data:`MIN_TREES` trees.
    """
    import copy

    node = _forest_node(model)
    if node is None:
        return None
    per_entry = {a.name: a for a in node.attribute
                 if a.name.startswith("nodes_") or
                 (a.name.startswith("class_") and a.name != "classlabels_int64s")}
    node_trees = np.asarray(per_entry["nodes_treeids"].ints)
    leaf_trees = np.asarray(per_entry["class_treeids"].ints)
    trees = np.unique(node_trees)
    if trees.size < max(MIN_TREES, 2 * trees_per_group):
        return None
    values = {name: np.asarray(_values(a)) for name, a in per_entry.items()}
    template = copy.deepcopy(model)  # with the per-node and per-leaf lists emptied
    for attribute in template.graph.node[0].attribute:
        if attribute.name in per_entry:
            del _values(attribute)[:]
    groups = []
    for start in range(0, trees.size, trees_per_group):
        chosen = trees[start:start + trees_per_group]
        keep = {"nodes_": np.isin(node_trees, chosen), "class_": np.isin(leaf_trees, chosen)}
        group = copy.deepcopy(template)
        for attribute in group.graph.node[0].attribute:
            if attribute.name in per_entry:
                target = {6: attribute.floats, 7: attribute.ints, 8: attribute.strings}[
                    attribute.type]  # AttributeProto FLOATS, INTS, STRINGS
                target.extend(values[attribute.name][keep[attribute.name[:6]]].tolist())
        groups.append(group)
    return groups


class GroupedForest:
    """A forest run group by group: ``predict(X)`` returns (labels, float32 probabilities)."""

    def __init__(self, sessions: list, whole, info, pool=None, workers: int = 1):
        self.sessions = sessions
        self.whole = whole
        self.info = info
        self.pool = pool
        self.workers = max(1, int(workers))
        self.class_values = np.asarray([c.value for c in info.classes])

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        total = None
        for session in self.sessions:
            part = session.run([self.info.probability_output], {self.info.input_name: X})[0]
            total = part if total is None else np.add(total, part, out=total)
        return total

    def predict(self, X: np.ndarray) -> tuple:
        """Classes and probabilities (capped at 1) of (N, bands) pixels."""
        from .classify import MIN_PIXELS_PER_THREAD

        X = np.ascontiguousarray(X, np.float32)
        parts = min(self.workers, X.shape[0] // MIN_PIXELS_PER_THREAD)
        if self.pool is None or parts < 2:
            probabilities = self._probabilities(X)
        else:
            probabilities = np.concatenate(list(self.pool.map(self._probabilities,
                                                              np.array_split(X, parts))))
        probabilities = np.require(probabilities, np.float32, ["W"])
        np.minimum(probabilities, np.float32(1), out=probabilities)
        labels = self.class_values[np.argmax(probabilities, axis=1)]
        top_two = np.partition(probabilities, -2, axis=1)[:, -2:]
        tied = np.flatnonzero(top_two[:, 1] - top_two[:, 0] < TIE_MARGIN)
        if tied.size:
            labels[tied] = np.asarray(self.whole.run(
                [self.info.label_output], {self.info.input_name: X[tied]})[0]).reshape(-1)
        return labels, probabilities


def grouped_forest(model, session, info, pool=None, workers: int = 1,
                   log: Log = no_log) -> Optional[GroupedForest]:
    """A :class:`GroupedForest` of a forest's ONNX graph (None for any other model).

    Args:
        model: the ONNX graph (ModelProto).
        session: an onnxruntime session of the whole graph (classifies tied pixels).
        info: the model's card (or any object with ``classes``, ``input_name``,
            ``label_output`` and ``probability_output``).
        pool, workers: the thread pool and the number of chunks a block is split into.
    """
    import onnxruntime as ort

    from ..models.pixel_model import session_options

    groups = split_forest(model)
    if groups is None:
        return None
    sessions = [ort.InferenceSession(g.SerializeToString(), session_options(1),
                                     providers=["CPUExecutionProvider"]) for g in groups]
    log(f"The forest runs as {len(sessions)} groups of up to {TREES_PER_GROUP} trees (same "
        "classes, faster on large trees).")
    return GroupedForest(sessions, session, info, pool, workers)


def load_grouped_forest(model_path: str, info, session, pool=None, workers: int = 1,
                        log: Log = no_log) -> Optional[GroupedForest]:
    """:func:`grouped_forest` of a LandFusion model file."""
    import onnx

    return grouped_forest(onnx.load(model_path, load_external_data=False), session, info, pool,
                          workers, log)
