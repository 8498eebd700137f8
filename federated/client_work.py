"""Client work of one round: local training, and evaluation of the client's own personalized model.

Local parameters (and BatchNorm statistics where the template keeps them local) live in the client's own
storage: the computation reads them from `state_in` and writes them to `state_out`, two file paths it is
given as strings. So they appear in no value that TFF moves: not in the server state, not in what the round
returns, not in what a remote worker sends back.
"""

from __future__ import annotations

import collections
from typing import List

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import pipeline
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig
from federated import conflicts
from federated import loss_terms
from federated.algorithm import Algorithm
from federated.config import AggregationConfig, ClientConfig
from federated.layout import ModelLayout
from pfmsmt_tf import layers, optimization

TRAIN_INPUT_TYPE = collections.OrderedDict(
    data=np.str_, state_in=np.str_, state_out=np.str_, key=np.int32, seed=np.int32)
# `whole`: `state` holds the whole model (saved by an earlier evaluation: the model selected on valid);
# `snapshot`: where to save the evaluated model whole ('' saves nothing).
EVAL_INPUT_TYPE = collections.OrderedDict(data=np.str_, state=np.str_, key=np.int32, whole=np.bool_,
                                          snapshot=np.str_)
TASK_CONFLICT = 'pcgrad'  # --task_pcgrad: the conflict method (federated/conflicts/) between task gradients
AUC_THRESHOLDS = 20_001  # agrees with the exact AUC within 1e-3 (tests/test_client_work.py)


# ------------------------------------------------------------------------------------------ local state files


def load_state(path: tf.Tensor, variables: List[tf.Variable]) -> None:
  """Assigns `variables` from the file at `path` when it exists (the first round keeps their initial values)."""
  if not variables:
    return
  if tf.size(tf.io.matching_files(path)) > 0:
    blobs = tf.io.parse_tensor(tf.io.read_file(path), tf.string)
    for j, v in enumerate(variables):
      v.assign(tf.reshape(tf.io.parse_tensor(blobs[j], v.dtype), v.shape))


def save_state(path: tf.Tensor, variables: List[tf.Variable]):
  if not variables:
    return tf.no_op()
  blobs = tf.stack([tf.io.serialize_tensor(v.read_value()) for v in variables])
  return tf.io.write_file(path, tf.io.serialize_tensor(blobs))


# ------------------------------------------------------------------------------------------ helpers


def _assign_received(layout: ModelLayout, weights, global_w, personal_vecs) -> None:
  for j, i in enumerate(layout.global_idx):
    weights[i].assign(global_w[j])
  for key in layout.group_idx:
    for i, value in layout.unflatten_group(key, personal_vecs[key]).items():
      weights[i].assign(value)


def _mix(target, v, w, alpha) -> None:
  """target_i = alpha v_i + (1 - alpha) w_i for every weight (APFL's deployed model)."""
  for t, a, b in zip(target, v, w):
    t.assign(alpha * a + (1.0 - alpha) * b)


def load_mixed(path: tf.Tensor, weights, personal_weights, alpha: tf.Variable) -> None:
  """APFL: `weights` hold the received global model w; the client's state file holds its personal model v
  and its alpha. Leaves alpha v + (1 - alpha) w, the model the client deploys, in `weights`."""
  load_state(path, list(personal_weights) + [alpha])
  _mix(weights, personal_weights, list(weights), alpha)


def _first(selected, layout: ModelLayout):
  """The one element of the sequence `tff.federated_select` delivers."""
  zeros = collections.OrderedDict((k, tf.zeros([layout.group_size(k)])) for k in layout.group_idx)
  return selected.reduce(zeros, lambda _, x: x)


def _task_losses(model, features, labels, tasks, training):
  out = model(features, training=training)
  bce = tf.keras.losses.BinaryCrossentropy()
  return [bce(labels[t], out[t]) for t in tasks]


def _dense(grads, variables):
  return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for v, g in zip(variables, grads)]


def _task_pcgrad_gradients(tape, losses, extra, trainable, seed):
  """PCGrad between the task gradients on the parameters every task reaches; the rest are summed."""
  # Each task's gradient of its share of the mean loss. (The tape has stopped recording: dividing the loss
  # here would be invisible to it, so the gradient is divided instead.)
  per_task = [tape.gradient(l, trainable) for l in losses]
  shared = [i for i in range(len(trainable)) if all(g[i] is not None for g in per_task)]
  dense = [[g / len(losses) for g in _dense(grads, trainable)] for grads in per_task]
  out = [tf.add_n([d[i] for d in dense]) for i in range(len(trainable))]
  if shared and len(losses) > 1:
    flat = tf.stack([tf.concat([tf.reshape(d[i], [-1]) for i in shared], 0) for d in dense])
    combined = tf.reduce_sum(conflicts.get(TASK_CONFLICT)(flat, seed, AggregationConfig())[0], axis=0)
    offset = 0
    for i in shared:
      n = int(np.prod(trainable[i].shape))
      out[i] = tf.reshape(combined[offset:offset + n], trainable[i].shape)
      offset += n
  extra_grads = _dense(tape.gradient(extra, trainable), trainable)
  return tuple(o + e for o, e in zip(out, extra_grads))


def _assign_steps(variables, updated, scales) -> None:
  """Each variable takes `scale` times the optimizer's step to its updated value."""
  for v, u, scale in zip(variables, updated, scales):
    v.assign(u if scale == 1.0 else v + scale * (u - v))


def fold_batches(dataset: tf.data.Dataset, fn, initial):
  """`dataset.reduce(initial, fn)`, as a while loop over an iterator, inside the client's tf.function.

  Why not `Dataset.reduce`: its op builds (instantiates and optimizes) its function again at every call, and
  a TFF worker calls a client's computation every round, in a session it keeps. With the default model at
  batch 2048 that rebuilding was a quarter of the worker's samples (perf); this loop is built once per
  session. (AutoGraph's `for x in dataset` is no way out: it becomes scan, take_while and reduce, which is why
  an earlier measurement found a "loop" slower than a reduce.) Iterations run one after another: they read
  and assign the same variables.
  """
  iterator = iter(dataset)

  def body(optional, carry):
    carry = fn(carry, optional.get_value())
    return iterator.get_next_as_optional(), carry

  _, carry = tf.while_loop(lambda optional, _: optional.has_value(), body,
                           (iterator.get_next_as_optional(), initial), parallel_iterations=1)
  return carry


def _run_steps(dataset, tasks, opt_state, step):
  """Runs `step(opt_state, features, labels, i) -> (opt_state, losses per task)` on every batch; returns the
  example-weighted mean loss per task and the example count."""

  def body(carry, batch):
    opt_state, sums, count, i = carry
    features, labels = batch
    opt_state, losses = step(opt_state, features, labels, i)
    n = tf.cast(tf.shape(labels[tasks[0]])[0], tf.float32)
    return opt_state, sums + n * tf.stack(losses), count + n, i + 1

  initial = (opt_state, tf.zeros([len(tasks)]), tf.constant(0.0), tf.constant(0, tf.int32))
  _, sums, count, _ = fold_batches(dataset, body, initial)
  return sums / tf.maximum(count, 1.0), count


def _step_seed(dropout_seed, i):
  return tf.random.experimental.stateless_fold_in(dropout_seed, tf.cast(i, tf.int64))


def _train(model, dataset, tasks, optimizer, extra_loss, dropout_seed, task_pcgrad=False, seed=None,
           variables=None, table_scales=()):
  """Minibatch training of `variables` (default: every trainable one, the others held fixed); returns the
  example-weighted mean loss per task and the example count. Feature i's embedding table takes
  `table_scales[i]` times the optimizer's step (a sparse id's row sees few examples). Step i's dropout masks
  come from `dropout_seed` (int64 [2]) and i."""
  trainable = tuple(model.trainable_variables if variables is None else variables)
  scales = optimization.step_scales(model, trainable, table_scales)

  def step(opt_state, features, labels, i):
    with tf.GradientTape(persistent=task_pcgrad) as tape, layers.step_seed(_step_seed(dropout_seed, i)):
      losses = _task_losses(model, features, labels, tasks, training=True)
      extra = extra_loss()
      loss = tf.add_n(losses) / len(tasks) + extra
    if task_pcgrad:
      grads = _task_pcgrad_gradients(tape, losses, extra, trainable, tf.cast(seed, tf.int32) * 7919 + i)
    else:
      grads = tuple(_dense(tape.gradient(loss, trainable), trainable))
    opt_state, updated = optimizer.next(opt_state, trainable, grads)
    _assign_steps(trainable, updated, scales)
    return opt_state, losses

  return _run_steps(dataset, tasks, optimizer.initialize(tuple(tf.TensorSpec(v.shape, v.dtype) for v in trainable)),
                    step)


def _train_mixed(personal, shared, mixed, alpha, dataset, tasks, optimizer, dropout_seed, table_scales=()):
  """APFL's personal training: on each batch, the loss of the mixed model m = alpha v + (1 - alpha) w (v the
  personal model, w the shared one, fixed here), differentiated through the mix: dv = alpha g and
  dalpha = <v - w, g>, g the gradient at m; alpha stays in [0, 1]. v's BatchNorm statistics follow m's.
  Returns the example-weighted mean loss per task and the example count."""
  v_vars, w_vars, m_vars = personal.trainable_variables, shared.trainable_variables, mixed.trainable_variables
  variables = tuple(v_vars) + (alpha,)
  scales = optimization.step_scales(personal, v_vars, table_scales) + (1.0,)

  def step(opt_state, features, labels, i):
    _mix(mixed.weights, personal.weights, shared.weights, alpha)
    with tf.GradientTape() as tape, layers.step_seed(_step_seed(dropout_seed, i)):
      losses = _task_losses(mixed, features, labels, tasks, training=True)
      loss = tf.add_n(losses) / len(tasks)
    g = _dense(tape.gradient(loss, m_vars), m_vars)
    d_alpha = tf.add_n([tf.reduce_sum((v - w) * gi) for v, w, gi in zip(v_vars, w_vars, g)])
    opt_state, updated = optimizer.next(opt_state, variables, tuple(alpha * gi for gi in g) + (d_alpha,))
    _assign_steps(variables, updated, scales)
    alpha.assign(tf.clip_by_value(alpha, 0.0, 1.0))
    for p, m in zip(personal.non_trainable_weights, mixed.non_trainable_weights):
      p.assign(m)
    return opt_state, losses

  return _run_steps(dataset, tasks, optimizer.initialize(tuple(tf.TensorSpec(v.shape, v.dtype) for v in variables)),
                    step)


def phase_variables(layout: ModelLayout, weights, phase: str) -> List[tf.Variable]:
  """The trainable variables one client training phase updates: `local` (what the template keeps on the
  client) or `shared` (global and personalized)."""
  local = set(layout.local_idx)
  chosen = [a.index for a in layout.assignments if a.trainable and ((a.index in local) == (phase == 'local'))]
  return [weights[i] for i in chosen]


# ------------------------------------------------------------------------------------------ computations


def build_client_update(layout: ModelLayout, spec: spec_lib.DatasetSpec, algorithm: Algorithm,
                        cfg: ClientConfig) -> tff.Computation:
  """One client's round: receive, train (with the algorithm's loss terms), send the update.

  Args:
    layout: the template's layout of the weights.
    spec: the data's spec (tasks; the input pipeline reads the client's own file pattern).
    algorithm: supplies the loss terms and the client behaviour (a personal model for Ditto).
    cfg: local training settings.

  Returns:
    A TFF computation (global weights, [its own personalized vectors], TRAIN_INPUT_TYPE) ->
    <update: <global, personalized: {group: [K, D] with its own row}, counts: [K]>, weight, metrics>.
  """
  tasks = spec.task_names
  k_clients = layout.num_clients
  has_groups = bool(layout.group_idx)
  train_cfg = PipelineConfig(batch_size=cfg.batch_size, shuffle_buffer=cfg.shuffle_buffer,
                             num_epochs=cfg.local_epochs)
  table_scales = cfg.table_scales(spec.categorical)

  def body(global_w, selected, inputs):
    model = layout.model_fn()
    personal = layout.model_fn() if algorithm.personal_model else None
    mixed = layout.model_fn() if algorithm.personal_mixing else None
    alpha = tf.Variable(cfg.apfl_alpha, dtype=tf.float32, name='apfl_alpha') if algorithm.personal_mixing else None
    optimizer = tff.learning.optimizers.build_adam(cfg.learning_rate)
    personal_optimizer = tff.learning.optimizers.build_adam(cfg.learning_rate) if personal is not None else None

    @tf.function
    def run(global_w, selected, inputs):
      weights = model.weights
      personal_vecs = _first(selected, layout) if has_groups else collections.OrderedDict()
      _assign_received(layout, weights, global_w, personal_vecs)
      local_vars = [weights[i] for i in layout.local_idx]
      if personal is not None:
        local_vars = list(personal.weights) + ([alpha] if alpha is not None else [])
      load_state(inputs['state_in'], local_vars)
      received_global = [tf.identity(g) for g in global_w]
      received_groups = {k: tf.identity(v) for k, v in personal_vecs.items()}
      seed = tf.cast(inputs['seed'], tf.int64)
      client_seed = tf.stack([seed, tf.cast(inputs['key'], tf.int64)])  # this round's, this client's

      def dropout_seed(stream):  # 2p: phase p of the model; 1: the personal model (as the data's seeds)
        return tf.random.experimental.stateless_fold_in(client_seed, stream)

      context = loss_terms.LossContext(weights, layout, received_global, received_groups)

      def extra_loss():
        loss = tf.constant(0.0)
        for term in algorithm.loss_terms:
          value = term(context, cfg)
          if value is not None:
            loss += value
        return loss

      # In phases where the algorithm declares them (FedRep: the local head first, then the shared body);
      # otherwise one pass over every trainable variable.
      for p, phase in enumerate(algorithm.client_phases or (None,)):
        dataset = pipeline.dataset_from_pattern(inputs['data'], spec, train_cfg, seed=seed + 2 * p)
        variables = phase_variables(layout, weights, phase) if phase else None
        mean_losses, count = _train(model, dataset, tasks, optimizer, extra_loss, dropout_seed(2 * p),
                                    cfg.task_pcgrad, inputs['seed'], variables=variables,
                                    table_scales=table_scales)

      if mixed is not None:  # apfl: the personal model, trained through its mix with the shared one
        personal_data = pipeline.dataset_from_pattern(inputs['data'], spec, train_cfg, seed=seed + 1)
        mean_losses, count = _train_mixed(personal, model, mixed, alpha, personal_data, tasks, personal_optimizer,
                                          dropout_seed(1), table_scales)
      elif personal is not None:  # ditto: the personal model, pulled towards the received global model
        trainable_idx = [a.index for a in layout.assignments if a.trainable]
        anchor = [received_global[layout.global_idx.index(i)] for i in trainable_idx]

        def pull():
          return 0.5 * cfg.reg_lambda * loss_terms.squared_distance([personal.weights[i] for i in trainable_idx],
                                                                    anchor)

        personal_data = pipeline.dataset_from_pattern(inputs['data'], spec, train_cfg, seed=seed + 1)
        mean_losses, count = _train(personal, personal_data, tasks, personal_optimizer, pull, dropout_seed(1),
                                    table_scales=table_scales)

      save_state(inputs['state_out'], local_vars)
      key = inputs['key']
      scattered = collections.OrderedDict(
          (k, tf.scatter_nd([[key]], [layout.flatten_group(k, weights) - received_groups[k]],
                            [k_clients, layout.group_size(k)]))
          for k in layout.group_idx)
      update = collections.OrderedDict([
          ('global', [weights[i] - received_global[j] for j, i in enumerate(layout.global_idx)]),
          ('personalized', scattered),
          ('counts', tf.scatter_nd([[key]], [count], [k_clients])),
      ])
      metrics = collections.OrderedDict([(f'loss_{t}', mean_losses[j]) for j, t in enumerate(tasks)])
      metrics['examples'] = count
      return collections.OrderedDict(update=update, weight=count, metrics=metrics)

    return run(global_w, selected, inputs)

  if has_groups:
    return tff.tensorflow.computation(body, layout.global_type(), tff.SequenceType(layout.vector_type()),
                                      TRAIN_INPUT_TYPE)
  return tff.tensorflow.computation(lambda g, i: body(g, None, i), layout.global_type(), TRAIN_INPUT_TYPE)


def build_client_eval(layout: ModelLayout, spec: spec_lib.DatasetSpec, algorithm: Algorithm,
                      cfg: ClientConfig) -> tff.Computation:
  """(global weights, [selected personalized vectors], inputs) -> {task: <auc, logloss, positives>, examples}.

  The client evaluates what it would deploy: the received parameters with its local ones from `state` (for
  ditto its personal model, for apfl its mix with the received global model); with `whole`, the whole model
  saved at `state` by an earlier evaluation (the model selected on the valid split). A non-empty `snapshot`
  saves the evaluated model there.
  """
  tasks = spec.task_names
  has_groups = bool(layout.group_idx)
  eval_cfg = PipelineConfig(batch_size=max(cfg.batch_size, 1024), shuffle_buffer=0)

  def body(global_w, selected, inputs):
    model = layout.model_fn()
    personal = layout.model_fn() if algorithm.personal_mixing else None
    alpha = tf.Variable(cfg.apfl_alpha, dtype=tf.float32, name='apfl_alpha') if algorithm.personal_mixing else None
    aucs = [tf.keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS) for _ in tasks]

    @tf.function
    def run(global_w, selected, inputs):
      weights = model.weights
      personal_vecs = _first(selected, layout) if has_groups else collections.OrderedDict()
      _assign_received(layout, weights, global_w, personal_vecs)
      if algorithm.personal_mixing:
        if inputs['whole']:
          load_state(inputs['state'], list(weights))
        else:
          load_mixed(inputs['state'], weights, personal.weights, alpha)
      elif algorithm.personal_model:
        load_state(inputs['state'], list(weights))
      elif inputs['whole']:
        load_state(inputs['state'], list(weights))
      else:
        load_state(inputs['state'], [weights[i] for i in layout.local_idx])
      if tf.strings.length(inputs['snapshot']) > 0:
        save_state(inputs['snapshot'], list(weights))

      def add_batch(carry, batch):
        log_loss, positives, count = carry
        features, labels = batch
        out = model(features, training=False)
        per_task = []
        for j, t in enumerate(tasks):
          p = tf.clip_by_value(out[t], 1e-7, 1 - 1e-7)
          aucs[j].update_state(labels[t], p)
          per_task.append(-tf.reduce_sum(labels[t] * tf.math.log(p) + (1 - labels[t]) * tf.math.log(1 - p)))
        return (log_loss + tf.stack(per_task), positives + tf.stack([tf.reduce_sum(labels[t]) for t in tasks]),
                count + tf.cast(tf.shape(labels[tasks[0]])[0], tf.float32))

      log_loss, positives, count = fold_batches(
          pipeline.dataset_from_pattern(inputs['data'], spec, eval_cfg), add_batch,
          (tf.zeros([len(tasks)]), tf.zeros([len(tasks)]), tf.constant(0.0)))
      result = collections.OrderedDict(
          (t, collections.OrderedDict(auc=aucs[j].result(), logloss=log_loss[j] / tf.maximum(count, 1.0),
                                      positives=positives[j]))
          for j, t in enumerate(tasks))
      result['examples'] = count
      result['key'] = inputs['key']  # results may come back in another order (remote workers)
      return result

    return run(global_w, selected, inputs)

  if has_groups:
    return tff.tensorflow.computation(body, layout.global_type(), tff.SequenceType(layout.vector_type()),
                                      EVAL_INPUT_TYPE)
  return tff.tensorflow.computation(lambda g, i: body(g, None, i), layout.global_type(), EVAL_INPUT_TYPE)
