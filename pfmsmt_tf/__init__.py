"""PF-MSMTrec's model layer: Keras models, layers, the parameter template and serving export (no TFF).

Public modules: `config` (ModelInputs, ModelConfig), `models` (build_model), `layers`, `template` (Rule,
Template, assign, Partition, describe, load_template) and `serving` (export_saved_model).
"""

__all__ = ['config', 'layers', 'models', 'serving', 'template']
