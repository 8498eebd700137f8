"""The Python API takes the CLI's flag names as keywords and routes each to the config that owns it."""

import pytest

from federated import api


def test_keywords_reach_their_configs():
  setup = api._run_setup(dict(output='r', algorithm='fedavg', seed=3, tau=0.2, learning_rate=0.01,  # pylint: disable=protected-access
                              expert_units=[16, 8], rounds=4), 'train')
  assert (setup.cfg.algorithm, setup.cfg.seed, setup.cfg.rounds) == ('fedavg', 3, 4)
  assert setup.aggregation_cfg.tau == 0.2 and setup.client_cfg.learning_rate == 0.01
  assert setup.model_cfg.expert_units == (16, 8) and setup.seeded_model_cfg().seed == 3  # the run's seed


def test_unknown_or_per_run_keywords_fail_before_any_work(tmp_path):
  with pytest.raises(TypeError, match=r"train\(\) got an unknown keyword 'learning_rat'; valid: .*learning_rate"):
    api.train(output=str(tmp_path / 'r'), learning_rat=0.1)
  with pytest.raises(TypeError, match=r"compare\(\) sets \['seed'\] per run"):
    api.compare(output=str(tmp_path / 'c'), algorithms=['fedavg'], seed=1)
  assert not (tmp_path / 'r').exists() and not (tmp_path / 'c').exists()
