"""tf.data pipelines and the TFF ClientData built from scenario partitions."""

import os

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import pipeline, prepare
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig, PrepareConfig
from federated import client_data, runtime


class PipelineTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = os.path.join(tf.compat.v1.test.get_temp_dir(), 'syn')
    prepare.prepare(PrepareConfig(output=cls.dir, rows_per_scenario=1_000, rows_per_shard=300, overwrite=True,
                                  valid_fraction=0),
                    log=lambda *_: None)
    cls.spec = spec_lib.load_spec(cls.dir)

  def test_batches_have_the_documented_structure(self):
    ds = pipeline.make_dataset(self.dir, self.spec, 'train', 'NL', PipelineConfig(batch_size=64))
    features, labels = next(iter(ds))
    self.assertEqual(features['categorical'].dtype, tf.int64)
    self.assertEqual(features['categorical'].shape, (64, 16))
    self.assertEqual(features['numerical'].shape, (64, 63))
    self.assertEqual(sorted(labels), ['ctcvr', 'ctr'])
    self.assertEqual(labels['ctr'].shape, (64,))
    self.assertLen(pipeline.scenario_files(self.dir, self.spec, 'train', 'NL'), 3)

  def test_every_row_once_per_epoch_and_shuffle_is_seeded(self):
    def rows(cfg):
      return np.concatenate([f['numerical'].numpy()[:, 0] for f, _ in
                             pipeline.make_dataset(self.dir, self.spec, 'train', 'ES', cfg)])
    plain = rows(PipelineConfig(batch_size=100, shuffle_buffer=0))
    a = rows(PipelineConfig(batch_size=100, shuffle_buffer=500, seed=1))
    b = rows(PipelineConfig(batch_size=100, shuffle_buffer=500, seed=1))
    c = rows(PipelineConfig(batch_size=100, shuffle_buffer=500, seed=2, num_epochs=2))
    single = rows(PipelineConfig(batch_size=100, shuffle_buffer=500, shuffle_block=1, seed=1))
    self.assertAllClose(np.sort(plain), np.sort(single))
    self.assertNotAllClose(single, a)
    self.assertLen(plain, 800)
    self.assertAllClose(np.sort(plain), np.sort(a))
    self.assertAllClose(a, b)
    self.assertNotAllClose(plain, a)
    self.assertLen(c, 1600)

  def test_missing_partition_and_split_errors(self):
    with self.assertRaisesRegex(ValueError, "unknown split 'val'"):
      pipeline.make_dataset(self.dir, self.spec, 'val', 'NL')
    with self.assertRaisesRegex(KeyError, 'unknown scenario'):
      pipeline.make_dataset(self.dir, self.spec, 'train', 'XX')
    with self.assertRaisesRegex(ValueError, 'no true probabilities'):
      pipeline.parse_fn(spec_lib.DatasetSpec(**{**self.spec.__dict__, 'has_true_probabilities': False}), True)

  def test_autotuning_is_off_unless_asked_and_leaves_the_rows_alone(self):
    """Off by default (config.PipelineConfig.autotune says why); on or off, the same batches in the same order."""
    cfg = PipelineConfig(batch_size=64)
    default = pipeline.make_dataset(self.dir, self.spec, 'train', 'NL', cfg)
    tuned = pipeline.make_dataset(self.dir, self.spec, 'train', 'NL', PipelineConfig(batch_size=64, autotune=True))
    self.assertIs(default.options().autotune.enabled, False)  # unset (None) means on
    self.assertIs(tuned.options().autotune.enabled, True)
    for (f0, l0), (f1, l1) in zip(default, tuned):
      self.assertAllEqual(f0['categorical'], f1['categorical'])
      self.assertAllEqual(l0['ctr'], l1['ctr'])

  def test_client_data_has_one_client_per_scenario(self):
    cd = client_data.make_client_data(self.dir, self.spec, 'test', PipelineConfig(batch_size=50, shuffle_buffer=0))
    self.assertEqual(sorted(cd.client_ids), ['ES', 'FR', 'NL', 'US'])
    n = sum(int(l['ctr'].shape[0]) for _, l in cd.create_tf_dataset_for_client('FR'))
    self.assertEqual(n, 200)

  def test_tff_computation_reads_the_rows_from_a_path(self):
    """TFF carries the file pattern; the dataset is built and read inside the computation."""
    spec, cfg = self.spec, PipelineConfig(batch_size=50, shuffle_buffer=0)

    @tff.tensorflow.computation(tf.string)
    def count_and_clicks(pattern):
      ds = pipeline.dataset_from_pattern(pattern, spec, cfg)
      return ds.reduce((0, 0.0), lambda acc, batch: (acc[0] + tf.shape(batch[1]['ctr'])[0],
                                                      acc[1] + tf.reduce_sum(batch[1]['ctr'])))

    self.assertEqual(str(count_and_clicks.type_signature.parameter), 'str')
    with runtime.local_runtime():
      n, clicks = count_and_clicks(pipeline.partition_pattern(self.dir, spec, 'train', 'US'))
    self.assertEqual(runtime.worker_processes(), [])
    expected = sum(float(tf.reduce_sum(l['ctr'])) for _, l in pipeline.make_dataset(self.dir, spec, 'train', 'US', cfg))
    self.assertEqual(n, 800)
    self.assertAllClose(clicks, expected)


if __name__ == '__main__':
  tf.test.main()
