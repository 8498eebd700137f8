"""PF-MSMTrec, and every baseline, as a TFF iterative process (ALGORITHM.md, "One communication round").

Round r: the server broadcasts the global parameters and sends each client only its own personalized
parameters (`tff.federated_select` keyed by the scenario index); clients train (local parameters from their
own storage); the template aggregator averages global updates and personalizes each group's updates; the
server applies them. A client output holding NaN or Inf is replaced by a zero update of weight 0 before it is
aggregated (as TFF's zeroing aggregators do), and flagged. The round returns the new server state, the
example-weighted train losses, the flags and the aggregator's measurements (federated/telemetry.py).

Why not `tff.learning.templates.compose_learning_process`: its parts assume one model whose weights all
travel. Its distributor broadcasts the same value to every client, while here each client receives only its
own row of each personalized group (`federated_select`); its client work takes a dataset and returns an
update shaped like the model weights, while here a client takes file paths (its rows, and its local
parameters in its own storage, which no TFF value carries) and returns global updates plus [K, D] matrices;
and its finalizer updates `ModelWeights`, while the server state here is the global values and every
client's personalized ones. The aggregation is a real `tff.aggregators` factory (federated/aggregators.py)
and the server optimizer a `tff.learning.optimizers` one, as TFF's own algorithms use them.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import spec as spec_lib
from federated import aggregators
from federated import algorithms as algorithms_lib
from federated import client_work
from federated.algorithm import Algorithm
from federated import privacy
from federated.config import AggregationConfig, ClientConfig
from federated.layout import ModelLayout


SERVER_OPTIMIZER = 'server_optimizer'  # the state's field for an algorithm's server optimizer (FedAvgM)


@dataclasses.dataclass
class FederatedProcess:
  """The round process and the evaluation computation that share its types."""

  process: tff.templates.IterativeProcess
  evaluate: tff.Computation
  client_update: tff.Computation  # what runs on each client; its result type is what leaves a client
  layout: ModelLayout
  algorithm: Algorithm


def build_process(layout: ModelLayout, spec: spec_lib.DatasetSpec, algorithm: Algorithm,
                  client_cfg: ClientConfig = ClientConfig(),
                  aggregation_cfg: AggregationConfig = AggregationConfig(),
                  global_factory: tff.aggregators.WeightedAggregationFactory | None = None) -> FederatedProcess:
  """The round process of `algorithm` on models laid out by `layout`.

  Args:
    layout: which weights are global, personalized (per group) or local, and their TFF types.
    spec: the prepared data's spec (tasks, scenarios; each client reads its own partition).
    algorithm: what differs between algorithms (federated/algorithm.py).
    client_cfg: local training settings.
    aggregation_cfg: server aggregation settings, before the algorithm's overrides.
    global_factory: replaces the mean of the global updates (default: `tff.aggregators.MeanFactory`, or the
      differentially private factory when --dp_noise_multiplier > 0).

  Returns:
    The iterative process (state: the model's global values, every client's personalized values, the
    aggregator's state and, where the algorithm has one, the server optimizer's), the evaluation computation
    and the client update computation.
  """
  k_clients = layout.num_clients
  has_groups = bool(layout.group_idx)
  agg_cfg = algorithm.aggregation(aggregation_cfg)
  client_update = client_work.build_client_update(layout, spec, algorithm, client_cfg)
  client_eval = client_work.build_client_eval(layout, spec, algorithm, client_cfg)
  update_type = client_update.type_signature.result
  if global_factory is None and privacy.enabled(agg_cfg):
    global_factory = privacy.global_factory(agg_cfg, k_clients)
  factory = aggregators.TemplateAggregationFactory(aggregators.group_conflicts(layout.groups, agg_cfg), agg_cfg,
                                                   global_factory, aggregators.group_rules(layout.groups, agg_cfg))
  aggregation = factory.create(update_type['update'], update_type['weight'])
  server_optimizer = algorithm.server_optimizer(agg_cfg) if algorithm.server_optimizer else None

  @tff.tensorflow.computation
  def initial_model():
    weights = layout.model_fn().weights
    return collections.OrderedDict([
        ('global', [weights[i].read_value() for i in layout.global_idx]),
        ('personalized', collections.OrderedDict(
            (k, tf.tile(layout.flatten_group(k, weights)[tf.newaxis, :], [k_clients, 1]))
            for k in layout.group_idx)),
    ])

  if server_optimizer is not None:
    @tff.tensorflow.computation
    def initial_optimizer_state():
      specs = tuple(tf.TensorSpec(layout.shapes[i], tf.float32) for i in layout.global_idx)
      return server_optimizer.initialize(specs)

  @tff.federated_computation
  def initialize():
    parts = collections.OrderedDict(model=tff.federated_eval(initial_model, tff.SERVER),
                                    aggregator=aggregation.initialize())
    if server_optimizer is not None:
      parts[SERVER_OPTIMIZER] = tff.federated_eval(initial_optimizer_state, tff.SERVER)
    return tff.federated_zip(parts)

  state_type = initialize.type_signature.result
  model_type = state_type.member['model']

  result_type = aggregation.next.type_signature.result.result.member

  def updated_model(model, result, new_global):
    return collections.OrderedDict([
        ('global', new_global),
        ('personalized', collections.OrderedDict(
            (k, model['personalized'][k] + result['personalized'][k]) for k in layout.group_idx)),
    ])

  @tff.tensorflow.computation(model_type, result_type)
  def apply_update(model, result):
    return updated_model(model, result, [w + d for w, d in zip(model['global'], result['global'])])

  if server_optimizer is not None:
    @tff.tensorflow.computation(model_type, state_type.member[SERVER_OPTIMIZER], result_type)
    def apply_with_optimizer(model, optimizer_state, result):
      """The negated mean global update is the server optimizer's gradient (as in TFF's FedAvg)."""
      optimizer_state, new_global = server_optimizer.next(
          optimizer_state, tuple(model['global']), tuple(-d for d in result['global']))
      return updated_model(model, result, list(new_global)), optimizer_state

  @tff.tensorflow.computation(model_type['personalized'], np.int32)
  def select_own(personalized, key):
    return collections.OrderedDict((k, tf.gather(v, key)) for k, v in personalized.items())

  @tff.tensorflow.computation(update_type, np.int32)
  def screen(output, key):
    """An output holding NaN or Inf becomes a zero update of weight 0, flagged in `rejected` ([K] int32);
    also the norm of the client's global update, at its index (telemetry)."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in tf.nest.flatten(output)])
    # A branch, not an element-wise select: a finite output (the usual case) passes on without a copy.
    zeroed = tf.cond(finite, lambda: output, lambda: tf.nest.map_structure(tf.zeros_like, output))
    global_update = zeroed['update']['global']
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(x)) for x in global_update])) if global_update else 0.0
    return (zeroed, tf.scatter_nd([[key]], [tf.cast(tf.logical_not(finite), tf.int32)], [k_clients]),
            tf.scatter_nd([[key]], [norm], [k_clients]))

  @tff.tensorflow.computation(np.int32)
  def as_key_list(key):
    return tf.reshape(key, [1])

  def distribute(state, keys):
    global_w = tff.federated_broadcast(state.model['global'])
    if not has_groups:
      return (global_w,)
    own = tff.federated_select(tff.federated_map(as_key_list, keys),
                               tff.federated_value(np.int32(k_clients - 1), tff.SERVER),
                               state.model['personalized'], select_own)
    return (global_w, own)

  @tff.federated_computation(state_type, tff.FederatedType(client_work.TRAIN_INPUT_TYPE, tff.CLIENTS))
  def next_fn(state, inputs):
    screened = tff.federated_map(screen, (
        tff.federated_map(client_update, (*distribute(state, inputs.key), inputs)), inputs.key))
    outputs, rejected, global_norms = screened[0], screened[1], screened[2]
    aggregated = aggregation.next(state.aggregator, outputs.update, outputs.weight)
    if server_optimizer is None:
      new_state = tff.federated_zip(collections.OrderedDict(
          model=tff.federated_map(apply_update, (state.model, aggregated.result)),
          aggregator=aggregated.state))
    else:
      applied = tff.federated_map(apply_with_optimizer,
                                  (state.model, state[SERVER_OPTIMIZER], aggregated.result))
      new_state = tff.federated_zip(collections.OrderedDict(
          model=applied[0], aggregator=aggregated.state, **{SERVER_OPTIMIZER: applied[1]}))
    return new_state, tff.federated_zip(collections.OrderedDict(
        train=tff.federated_mean(outputs.metrics, weight=outputs.weight),
        rejected=tff.federated_sum(rejected),
        aggregation=tff.federated_zip(collections.OrderedDict(
            global_update_norm=tff.federated_sum(global_norms), aggregator=aggregated.measurements))))

  @tff.federated_computation(state_type, tff.FederatedType(client_work.EVAL_INPUT_TYPE, tff.CLIENTS))
  def evaluate(state, inputs):
    return tff.federated_map(client_eval, (*distribute(state, inputs.key), inputs))

  return FederatedProcess(tff.templates.IterativeProcess(initialize, next_fn), evaluate, client_update, layout,
                          algorithm)


def build_algorithm_process(algorithm: str, model_fn, spec: spec_lib.DatasetSpec,
                            client_cfg: ClientConfig = ClientConfig(),
                            aggregation_cfg: AggregationConfig = AggregationConfig(),
                            template=None,
                            global_factory: tff.aggregators.WeightedAggregationFactory | None = None
                            ) -> FederatedProcess:
  """The process of a registered federated algorithm (federated/algorithms/) on models from `model_fn`.

  Args:
    algorithm: the algorithm's registry name (`pfmsmt algorithms`).
    model_fn: builds one scenario's Keras model (every client's has the same structure).
    spec: the prepared data's spec; its scenarios are the clients.
    client_cfg, aggregation_cfg, global_factory: as for `build_process`.
    template: replaces the algorithm's own template (a custom split of the parameters).

  Returns:
    A `FederatedProcess` (see `build_process`).
  """
  alg = algorithms_lib.get(algorithm)
  if not alg.federated:
    raise ValueError(f'{algorithm} is not a federated algorithm (it trains one model on pooled rows)')
  template = template or alg.template_for(model_fn(), spec.statistics_scope == 'shared')
  layout = ModelLayout.from_model_fn(model_fn, template, len(spec.scenarios))
  return build_process(layout, spec, alg, client_cfg, aggregation_cfg, global_factory)


def build_pfmsmtrec_process(model_fn, spec: spec_lib.DatasetSpec, **kwargs) -> FederatedProcess:
  """PF-MSMTrec with its default template (see `build_algorithm_process` for the options)."""
  return build_algorithm_process('pfmsmtrec', model_fn, spec, **kwargs)
