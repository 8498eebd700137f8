"""PF-MSMTrec's federated layer: algorithms as TFF processes, their training, evaluation and comparison.

Entry points: `api` (prepare, train, compare, evaluate, export as keyword functions), the `pfmsmt` command
line (`cli`), `experiment` (the paper's comparison on a dataset).
Extension points, one module per part: `algorithms` (the registry; `algorithm.Algorithm` says what an
algorithm declares), `conflicts` (conflict coordination methods), `personalization` (aggregation rules),
`loss_terms` (client loss terms).
The library: `process` (build_process, build_algorithm_process), `client_work`, `aggregators`
(TemplateAggregationFactory), `layout`, `privacy`, `training` (train, train_in_runtime), `trainers`,
`run_directory`, `selection`, `reporting`, `telemetry`, `comparison`, `restore`, `runtime`, and for remote
silos `coordinator`, `worker`, `gate` (the worker's mutual-TLS door), `netns` (the executor's private
network) and `tls` (certificates).
"""

__all__ = ['aggregators', 'algorithm', 'algorithms', 'api', 'client_data', 'client_work', 'comparison',
           'config', 'conflicts', 'coordinator', 'experiment', 'gate', 'layout', 'loss_terms', 'netns',
           'personalization', 'privacy', 'process', 'registry', 'reporting', 'restore', 'run_directory', 'runtime',
           'selection', 'telemetry', 'tls', 'trainers', 'training', 'worker']
