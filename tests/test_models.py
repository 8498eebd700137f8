"""The template-structured MMoE: shapes, gradients, serialization, ESMM, and a central sanity fit."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from pfmsmt_tf import config as config_lib
from pfmsmt_tf import layers, models

INPUTS = config_lib.ModelInputs(('a', 'b', 'c'), (5, 7, 3), 4, ('ctr', 'ctcvr'))


def _batch(inputs=INPUTS, n=64, seed=0):
  rng = np.random.default_rng(seed)
  cat = np.stack([rng.integers(0, d, n) for d in inputs.categorical_dims], axis=1) if inputs.categorical_dims \
      else np.zeros((n, 0), np.int64)
  return ({'categorical': tf.constant(cat, tf.int64),
           'numerical': tf.constant(rng.normal(size=(n, inputs.num_numerical)), tf.float32)},
          {t: tf.constant(rng.integers(0, 2, n), tf.float32) for t in inputs.tasks})


class ModelTest(tf.test.TestCase):

  def test_output_shapes_for_one_two_three_tasks(self):
    for tasks in (('ctr',), ('ctr', 'ctcvr'), ('a', 'b', 'c')):
      inputs = dataclasses.replace(INPUTS, tasks=tasks)
      model = models.build_model(inputs, config_lib.ModelConfig(seed=0))
      out = model(_batch(inputs, 9)[0])
      self.assertEqual(sorted(out), sorted(tasks))
      for p in out.values():
        self.assertEqual(p.shape, (9,))
        self.assertAllInRange(p, 0.0, 1.0)

  def test_backbones_and_expert_counts(self):
    cases = [
        config_lib.ModelConfig(num_global_experts=0, num_task_experts=0, num_scenario_experts=3),  # plain MMoE
        config_lib.ModelConfig(num_global_experts=0, num_scenario_experts=0, num_task_experts=2),
        config_lib.ModelConfig(backbone='shared_bottom'),
        config_lib.ModelConfig(backbone='single_task'),
        config_lib.ModelConfig(batch_norm=False, dropout=0.0, tower_units=()),
    ]
    for cfg in cases:
      model = models.build_model(INPUTS, cfg)
      self.assertEqual(model(_batch()[0])['ctr'].shape, (64,))
    groups = models.build_model(INPUTS, cases[0]).layer_groups()
    self.assertEqual(groups['global_experts'], [])
    self.assertEqual(groups['task_experts'], {'ctr': [], 'ctcvr': []})
    self.assertEqual(models.build_model(INPUTS, cases[3]).layer_groups()['gates'], {})
    with self.assertRaisesRegex(ValueError, 'at least one expert'):
      config_lib.ModelConfig(num_global_experts=0, num_scenario_experts=0, num_task_experts=0)

  def test_gradients_reach_every_trainable_variable(self):
    for cfg in (config_lib.ModelConfig(seed=1, dropout=0.0), config_lib.ModelConfig(seed=1, backbone='shared_bottom')):
      model = models.build_model(INPUTS, cfg)
      features, labels = _batch(n=256)
      with tf.GradientTape() as tape:
        out = model(features, training=True)
        loss = tf.add_n([tf.keras.losses.binary_crossentropy(labels[t], out[t]) for t in INPUTS.tasks])
      grads = tape.gradient(loss, model.trainable_variables)
      for v, g in zip(model.trainable_variables, grads):
        self.assertIsNotNone(g, v.name)
        self.assertGreater(float(tf.norm(tf.convert_to_tensor(g))), 0.0, v.name)

  def test_esmm_chaining(self):
    model = models.build_model(INPUTS, config_lib.ModelConfig(esmm=True, seed=0))
    out = model(_batch()[0])
    self.assertAllLessEqual(out['ctcvr'] - out['ctr'], 0.0)
    with self.assertRaisesRegex(ValueError, 'two tasks'):
      models.build_model(dataclasses.replace(INPUTS, tasks=('ctr',)), config_lib.ModelConfig(esmm=True))

  def test_config_round_trip_and_seeded_init(self):
    cfg = config_lib.ModelConfig(seed=3, expert_units=(16, 8), num_task_experts=2)
    model = models.build_model(INPUTS, cfg)
    clone = models.MultiScenarioModel.from_config(model.get_config()).build_weights()
    self.assertEqual(clone.config, cfg)
    self.assertEqual(clone.model_inputs, INPUTS)
    self.assertEqual([v.name for v in clone.weights], [v.name for v in model.weights])
    for a, b in zip(model.get_weights(), clone.get_weights()):
      self.assertAllEqual(a, b)  # same seed, same initial weights
    layer = model.features
    self.assertEqual(type(layer).from_config(layer.get_config()).get_config(), layer.get_config())

  def test_save_and_load(self):
    model = models.build_model(INPUTS, config_lib.ModelConfig(seed=0))
    features, _ = _batch()
    want = model(features)
    for name in ('model.keras', 'saved_model'):
      path = os.path.join(self.get_temp_dir(), name)
      model.save(path)
      loaded = tf.keras.models.load_model(path)
      got = loaded(features)
      for t in INPUTS.tasks:
        self.assertAllClose(got[t], want[t])

  def test_paper_config_sizes(self):
    cfg = config_lib.paper_config()
    self.assertEqual((cfg.embedding_dim, cfg.expert_units, cfg.num_scenario_experts, cfg.tower_units, cfg.dropout),
                     (128, (512, 256), 8, (128, 64), 0.2))


class SeededDropoutTest(tf.test.TestCase):

  def _masks(self, layer, seed, training=True):
    x = tf.ones([8, 64])
    if seed is None:
      return layer(x, training=training).numpy()
    with layers.step_seed(tf.constant(seed, tf.int64)):
      return layer(x, training=training).numpy()

  def test_the_mask_is_a_function_of_the_step_seed_and_the_layer(self):
    layer, other = layers.SeededDropout(0.5, seed=3), layers.SeededDropout(0.5, seed=4)
    first = self._masks(layer, [7, 1])
    self.assertAllEqual(first, self._masks(layer, [7, 1]))  # no hidden state between calls
    self.assertNotAllEqual(first, self._masks(layer, [7, 2]))
    self.assertNotAllEqual(first, self._masks(other, [7, 1]))
    self.assertAllInSet(first, [0.0, 2.0])  # kept values scaled by 1 / (1 - rate)
    self.assertBetween(float(np.mean(first == 0)), 0.4, 0.6)

  def test_off_when_not_training_and_keras_dropout_outside_a_step(self):
    layer = layers.SeededDropout(0.5, seed=3)
    self.assertAllEqual(self._masks(layer, [7, 1], training=False), np.ones([8, 64]))
    keras_masks = self._masks(layer, None)
    self.assertAllInSet(keras_masks, [0.0, 2.0])
    self.assertBetween(float(np.mean(keras_masks == 0)), 0.4, 0.6)

  def test_a_symbolic_training_flag(self):
    layer = layers.SeededDropout(0.5, seed=3)

    @tf.function
    def call(training):
      with layers.step_seed(tf.constant([7, 1], tf.int64)):
        return layer(tf.ones([8, 64]), training=training)

    self.assertAllEqual(call(tf.constant(False)), np.ones([8, 64]))
    self.assertAllEqual(call(tf.constant(True)), self._masks(layer, [7, 1]))


class CentralFitTest(tf.test.TestCase):
  """Trained centrally with model.fit on the synthetic default for one epoch: a sanity check, not a benchmark."""

  def test_one_epoch_beats_chance_in_every_scenario_and_task(self):
    from data_pipelines import pipeline, prepare  # pylint: disable=g-import-not-at-top
    from data_pipelines import spec as spec_lib  # pylint: disable=g-import-not-at-top
    from data_pipelines.config import PipelineConfig, PrepareConfig  # pylint: disable=g-import-not-at-top
    from data_pipelines import metrics  # pylint: disable=g-import-not-at-top
    data = os.path.join(self.get_temp_dir(), 'syn')
    prepare.prepare(PrepareConfig(output=data, rows_per_scenario=15_000, overwrite=True), log=lambda *_: None)
    spec = spec_lib.load_spec(data)
    inputs = config_lib.ModelInputs.from_dataset_spec(spec)
    model = models.build_model(inputs, config_lib.ModelConfig(seed=0))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss={t: tf.keras.losses.BinaryCrossentropy() for t in inputs.tasks})
    train = None
    for s in spec.scenario_names:
      ds = pipeline.make_dataset(data, spec, 'train', s, PipelineConfig(batch_size=256, seed=1))
      train = ds if train is None else train.concatenate(ds)
    model.fit(train.shuffle(64, seed=0), epochs=1, verbose=0)
    for s in spec.scenario_names:
      labels, probs = {t: [] for t in inputs.tasks}, {t: [] for t in inputs.tasks}
      for f, l in pipeline.make_dataset(data, spec, 'test', s, PipelineConfig(batch_size=1024, shuffle_buffer=0)):
        out = model(f, training=False)
        for t in inputs.tasks:
          labels[t].append(l[t].numpy())
          probs[t].append(out[t].numpy())
      for t in inputs.tasks:
        auc = metrics.exact_auc(np.concatenate(labels[t]), np.concatenate(probs[t]))
        self.assertGreater(auc, 0.6, f'{s}/{t}')
