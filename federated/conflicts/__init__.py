"""Conflict coordination: one module per method, each defining `coordinate` with one signature.

    coordinate(updates: [K, D] tf.Tensor, seed: int32 scalar, cfg: AggregationConfig)
        -> (coordinated [K, D], measurements: OrderedDict of tensors)

Row k is one party's update (a client's, at the server; a task's gradient, on the client with
`--task_pcgrad`). The server aggregator (federated/aggregators.py) and the client's task-level PCGrad
(federated/client_work.py) look methods up here by name (`--conflict`, `--tower_conflict`).
"""

from __future__ import annotations

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'conflict method', 'coordinate')
names = _REGISTRY.names
get = _REGISTRY.get
