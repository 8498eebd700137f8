"""Readers and tf.data pipelines: source rows -> per-scenario partitions of fixed-width rows -> datasets.

The bottom layer: it imports neither pfmsmt_tf nor federated. Public modules: `prepare` (prepare,
resolve_data, format_summary), `config` (PrepareConfig, PipelineConfig), `spec` (DatasetSpec, load_spec),
`pipeline` (make_dataset, dataset_from_pattern), the readers (`aliexpress`, `aliccp`, `census`, `tenrec`,
`csv_dataset`, `synthetic`), `metrics` (exact AUC and log loss in numpy) and `flagconfig` (config
dataclasses as absl flags), the last two shared by every layer.
"""

__all__ = ['aliccp', 'aliexpress', 'census', 'config', 'csv_dataset', 'flagconfig', 'metrics', 'pipeline',
           'prepare', 'spec', 'synthetic', 'tenrec']
