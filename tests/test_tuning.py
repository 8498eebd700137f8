"""`pfmsmt tune`: the searched settings per algorithm, a resumable study scored on valid, and a flagfile that the
train flags accept. The runs are replaced by a known score function here; tests/test_cli.py runs a real one."""

import json
import math
import os

from absl import flags
import pytest

from data_pipelines import flagconfig
from federated import algorithms, tuning
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig, TuneConfig
from pfmsmt_tf.config import ModelConfig


def _setup(algorithm, output):
  return RunSetup(TrainConfig(algorithm=algorithm, output=output, seed=0), ModelConfig(), ClientConfig(),
                  AggregationConfig())


def _fake_train(calls, rounds=0):
  """A run whose valid AUC peaks at learning_rate 1e-3 and tau 0.5; one scenario's cell is undefined. With
  `rounds`, it reports that many rounds to `on_round` first, its AUC rising to the final score."""
  def train(setup, on_round=lambda row: None):
    calls.append(setup)
    lr, tau = setup.client_cfg.learning_rate, setup.aggregation_cfg.tau
    score = 0.9 - 0.1 * abs(math.log10(lr) + 3) - 0.05 * abs(math.log10(tau / 0.5))
    for r in range(1, rounds + 1):
      on_round({'round': r, tuning.VALID_KEY: score - 0.01 * (rounds - r)})
    return {'valid': {'a': {'t': {'auc': score}}, 'b': {'t': {'auc': float('nan')}}}}
  return train


def _search(budget, **kwargs):
  return TuneConfig(budget, **kwargs)


def test_every_algorithm_searches_the_common_settings_and_its_own():
  assert tuning.searched('fedavg') == list(tuning.COMMON)
  assert tuning.searched('pfmsmtrec') == list(tuning.COMMON) + ['tau', 'reg_lambda']
  assert tuning.searched('fedprox')[-1] == 'prox_mu' and tuning.searched('apfl')[-1] == 'apfl_alpha'
  for a in algorithms.all_algorithms():
    tuning.searched(a.name)  # every declared knob has a range
    assert all(hasattr(ClientConfig(), n) or hasattr(AggregationConfig(), n) for n in a.tuned), a.name


def test_a_search_is_scored_on_valid_resumes_and_writes_a_flagfile(tmp_path):
  out = str(tmp_path / 'tune')
  calls = []
  best = tuning.tune(_setup('pfmsmtrec', out), _search(4), out, _fake_train(calls), log=lambda *_: None)
  assert len(calls) == 4 and len({c.cfg.output for c in calls}) == 4
  assert all(c.cfg.output.startswith(os.path.join(out, 'trials')) and c.cfg.seed == 0 for c in calls)
  assert set(best['params']) == {'learning_rate', 'local_epochs', 'embedding_lr_scale', 'sparse_embedding_lr_scale',
                                 'tau', 'reg_lambda'}
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert best['score'] == max(t['score'] for t in record['trials']) and len(record['trials']) == 4

  more = []
  tuning.tune(_setup('pfmsmtrec', out), _search(6), out, _fake_train(more), log=lambda *_: None)
  assert len(more) == 2  # the 4 finished trials are kept
  drawn = [c.client_cfg.learning_rate for c in calls + more]
  assert len(set(drawn)) == 6, drawn  # the resumed search does not replay its seed's first draws

  values = flags.FlagValues()
  flagconfig.define_flags(ClientConfig, 'test', flag_values=values)
  flagconfig.define_flags(AggregationConfig, 'test', flag_values=values)
  values(['x', f'--flagfile={os.path.join(out, tuning.BEST_FLAGS)}'])
  tuned = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))['best']['params']
  assert values['tau'].value == pytest.approx(tuned['tau']) and values['local_epochs'].value == tuned['local_epochs']


def test_a_search_continues_from_its_record_when_the_study_is_gone(tmp_path):
  """tuning.json is the record a clean checkout carries; study.db only a cache of it."""
  out = str(tmp_path / 'tune')
  after = []
  tuning.tune(_setup('fedprox', out), _search(3), out, _fake_train([]), log=lambda *_: None,
              on_trial=lambda: after.append(json.load(open(os.path.join(out, tuning.TRIALS_FILE)))['complete']))
  assert after == [1, 2, 3]  # the record is current whenever on_trial runs
  first = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  os.makedirs(str(tmp_path / 'partial' / 'fedprox'))
  json.dump(dict(first, budget=5), open(str(tmp_path / 'partial' / 'fedprox' / tuning.TRIALS_FILE), 'w'))
  with pytest.raises(ValueError, match='has 3 of its 5 trials'):  # an unfinished search is not a tuned setting
    tuning.load_best(str(tmp_path / 'partial'), 'fedprox')
  os.remove(os.path.join(out, tuning.STUDY_FILE))

  more, lines = [], []
  best = tuning.tune(_setup('fedprox', out), _search(5), out, _fake_train(more), log=lines.append)
  assert len(more) == 2 and lines[0].startswith('3 finished trial(s) restored')
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert record['complete'] == 5 and record['trials'][:3] == first['trials']
  assert best['score'] == max(t['score'] for t in record['trials'])

  json.dump(dict(record, algorithm='ditto'), open(os.path.join(out, tuning.TRIALS_FILE), 'w'))
  os.remove(os.path.join(out, tuning.STUDY_FILE))
  with pytest.raises(ValueError, match='is the search of ditto, not of fedprox'):
    tuning.tune(_setup('fedprox', out), _search(5), out, _fake_train([]), log=lambda *_: None)


def test_unpromising_trials_are_pruned_count_in_the_budget_and_are_restored(tmp_path):
  out = str(tmp_path / 'tune')
  calls, lines = [], []
  best = tuning.tune(_setup('pfmsmtrec', out), _search(10, prune_startup_trials=3, prune_warmup_rounds=2), out,
                     _fake_train(calls, rounds=6), log=lines.append)
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  states = [t['state'] for t in record['trials']]
  assert len(calls) == 10 and record['spent'] == 10 and states.count('PRUNED') >= 1, states
  assert states[:3] == ['COMPLETE'] * 3  # the startup trials run every round
  pruned = [t for t in record['trials'] if t['state'] == 'PRUNED']
  assert all(t['score'] is None and 3 <= len(t['rounds']) < 6 for t in pruned)  # stopped after the warm-up
  assert all(len(t['rounds']) == 6 for t in record['trials'] if t['state'] == 'COMPLETE')
  assert sum('pruned after round' in line for line in lines) == len(pruned)
  assert best['score'] == max(t['score'] for t in record['trials'] if t['state'] == 'COMPLETE')

  os.remove(os.path.join(out, tuning.STUDY_FILE))  # a clean checkout: the record restores the pruner's history
  more = []
  tuning.tune(_setup('pfmsmtrec', out), _search(11, prune_startup_trials=3, prune_warmup_rounds=2), out,
              _fake_train(more, rounds=6), log=lambda *_: None)
  again = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert len(more) == 1 and again['spent'] == 11
  assert [(t['state'], t['rounds']) for t in again['trials'][:10]] == [(t['state'], t['rounds']) for t in
                                                                       record['trials']]

  off = str(tmp_path / 'off')
  tuning.tune(_setup('pfmsmtrec', off), _search(6, prune=False), off, _fake_train([], rounds=6),
              log=lambda *_: None)
  assert {t['state'] for t in json.load(open(os.path.join(off, tuning.TRIALS_FILE)))['trials']} == {'COMPLETE'}


def test_a_trial_on_several_seeds_is_scored_by_their_mean_and_pruned_on_the_first(tmp_path):
  """With a small valid split the best of many one-seed trials is partly the best of its noise: a trial then
  runs on consecutive seeds, and its record says so, so that a one-seed record is never mixed in."""
  def noisy_train(calls):
    def train(setup, on_round=lambda row: None):
      calls.append(setup)
      score = 0.9 - 0.1 * abs(math.log10(setup.client_cfg.learning_rate) + 3) + 0.01 * setup.cfg.seed
      for r in (1, 2):
        on_round({'round': r, tuning.VALID_KEY: score - 0.01 * (2 - r)})
      return {'valid': {'a': {'t': {'auc': score}}}}
    return train

  out, calls = str(tmp_path / 'tune'), []
  tuning.tune(_setup('fedavg', out), _search(3, trial_seeds=3, prune=False), out, noisy_train(calls),
              log=lambda *_: None)
  assert [c.cfg.seed for c in calls] == [0, 1, 2] * 3
  assert [os.path.basename(c.cfg.output) for c in calls[:3]] == ['trial_0', 'trial_0_seed_1', 'trial_0_seed_2']
  assert len({c.client_cfg.learning_rate for c in calls[:3]}) == 1  # one setting, three seeds
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert record['trial_seeds'] == 3
  for t, runs in zip(record['trials'], [calls[i:i + 3] for i in (0, 3, 6)]):
    first = 0.9 - 0.1 * abs(math.log10(runs[0].client_cfg.learning_rate) + 3)
    assert t['score'] == pytest.approx(first + 0.01)  # the mean of seeds 0, 1, 2
    assert t['rounds'] == {'1': pytest.approx(first - 0.01), '2': pytest.approx(first)}  # the first seed's

  for gone in ((), (tuning.STUDY_FILE,)):  # with its study, and from its record alone
    for name in gone:
      os.remove(os.path.join(out, name))
    with pytest.raises(ValueError, match=r'scored on 3 seed\(s\) each, this search on 1'):
      tuning.tune(_setup('fedavg', out), _search(4), out, noisy_train([]), log=lambda *_: None)


def test_budget_must_be_positive():
  with pytest.raises(ValueError, match='--budget must be >= 1'):
    TuneConfig(0)
  with pytest.raises(ValueError, match='--trial_seeds must be >= 1'):
    TuneConfig(trial_seeds=0)


@pytest.mark.slow
def test_pfmsmt_tune_runs_trials_and_train_accepts_its_flagfile(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from federated import api  # pylint: disable=g-import-not-at-top
  data = api.prepare(output=str(tmp_path / 'data'), rows_per_scenario=300).output
  small = ['--embedding_dim=4', '--expert_units=8', '--tower_units=4', '--rounds=1']
  out = str(tmp_path / 'tune')
  cli = [sys.executable, '-m', 'federated.cli', 'tune', f'--data={data}', '--algorithm=fedprox', '--budget=2',
         f'--output={out}'] + small
  done = subprocess.run(cli, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'best of 2 trials: valid mean AUC' in done.stdout and '--prox_mu=' in done.stdout
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert [t['state'] for t in record['trials']] == ['COMPLETE', 'COMPLETE']
  trial = json.load(open(os.path.join(out, 'trials', 'trial_0', 'metrics.json')))
  assert trial['valid'] and not {'test', 'mean_auc', 'last'} & set(trial)  # scored on valid; test never looked at
  train = [sys.executable, '-m', 'federated.cli', 'train', f'--data={data}', '--algorithm=fedprox',
           f'--flagfile={os.path.join(out, tuning.BEST_FLAGS)}', f'--output={tmp_path / "run"}'] + small
  done = subprocess.run(train, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'test' in json.load(open(tmp_path / 'run' / 'metrics.json'))
  config = json.load(open(tmp_path / 'run' / 'config.json'))
  assert json.dumps(config).count(str(record['best']['params']['prox_mu'])) >= 1


def test_compare_runs_each_algorithm_at_its_tuned_settings(tmp_path, monkeypatch):
  from federated import comparison  # pylint: disable=g-import-not-at-top
  from federated.config import CompareConfig  # pylint: disable=g-import-not-at-top
  tuned = str(tmp_path / 'tuned')
  tuning.tune(_setup('pfmsmtrec', os.path.join(tuned, 'pfmsmtrec')), _search(2), os.path.join(tuned, 'pfmsmtrec'),
              _fake_train([]), log=lambda *_: None)
  best = tuning.load_best(tuned, 'pfmsmtrec')
  assert tuning.load_best(tuned, 'fedavg') is None
  trained = {}

  def fake_train(setup, log):
    del log
    trained[setup.cfg.algorithm] = setup
    os.makedirs(setup.cfg.output, exist_ok=True)
    raise SystemExit  # enough: the settings each run would train with are what is checked

  monkeypatch.setattr(comparison.training, 'train', fake_train)
  monkeypatch.setattr(comparison, 'prepare', type('P', (), {'resolve_data': staticmethod(lambda d, o, log: d)}))
  monkeypatch.setattr(comparison, 'test_label_counts', lambda data: {})
  cfg = CompareConfig(algorithms=('pfmsmtrec',), seeds=1, output=str(tmp_path / 'cmp'), tuned=tuned,
                      logistic_reference=False)
  with pytest.raises(SystemExit):
    comparison.run_all(cfg, _setup('pfmsmtrec', str(tmp_path / 'cmp')), log=lambda *_: None)
  setup = trained['pfmsmtrec']
  assert setup.client_cfg.learning_rate == best['learning_rate'] and setup.aggregation_cfg.tau == best['tau']


def test_a_report_needs_only_the_searches_it_shows_and_training_needs_them_all(tmp_path, monkeypatch):
  from federated import comparison  # pylint: disable=g-import-not-at-top
  from federated.config import CompareConfig  # pylint: disable=g-import-not-at-top
  tuned = str(tmp_path / 'tuned')
  tuning.tune(_setup('fedavg', os.path.join(tuned, 'fedavg')), _search(1), os.path.join(tuned, 'fedavg'),
              _fake_train([]), log=lambda *_: None)
  record = json.load(open(os.path.join(tuned, 'fedavg', tuning.TRIALS_FILE)))
  json.dump(dict(record, budget=3), open(os.path.join(tuned, 'fedavg', tuning.TRIALS_FILE), 'w'))  # 1 of 3
  monkeypatch.setattr(comparison, 'prepare', type('P', (), {'resolve_data': staticmethod(lambda d, o, log: d)}))
  monkeypatch.setattr(comparison, 'test_label_counts', lambda data: {})
  cfg = CompareConfig(algorithms=('fedavg',), seeds=1, output=str(tmp_path / 'cmp'), tuned=tuned,
                      logistic_reference=False)
  assert comparison.run_all(cfg, _setup('fedavg', str(tmp_path / 'cmp')), log=lambda *_: None,
                            train_missing=False) == []  # nothing finished: nothing to show, no search read
  with pytest.raises(ValueError, match='has 1 of its 3 trials'):
    comparison.run_all(cfg, _setup('fedavg', str(tmp_path / 'cmp')), log=lambda *_: None)


def test_a_run_without_a_valid_score_stops_the_search_with_the_reason(tmp_path):
  def no_valid(setup, on_round):
    del setup, on_round
    return {'valid': {'a': {'t': {'auc': float('nan')}}}}
  with pytest.raises(ValueError, match=r'trial 0 .* has no valid AUC to score: tuning needs a valid split'):
    tuning.tune(_setup('fedavg', str(tmp_path)), _search(2), str(tmp_path), no_valid, log=lambda *_: None)


def test_the_defaults_are_one_trial_of_the_budget(tmp_path):
  out = str(tmp_path / 'tune')
  calls = []
  setup = _setup('pfmsmtrec', out)
  tuning.tune(setup, _search(3), out, _fake_train(calls), log=lambda *_: None)
  assert len(calls) == 3
  first = calls[0]
  assert (first.client_cfg.learning_rate, first.client_cfg.local_epochs, first.aggregation_cfg.tau,
          first.client_cfg.reg_lambda) == (ClientConfig().learning_rate, ClientConfig().local_epochs,
                                           AggregationConfig().tau, ClientConfig().reg_lambda)
  record = json.load(open(os.path.join(out, tuning.TRIALS_FILE)))
  assert record['best']['score'] >= record['trials'][0]['score']  # never below the defaults on valid
  more = []
  tuning.tune(setup, _search(4), out, _fake_train(more), log=lambda *_: None)
  assert len(more) == 1 and more[0].client_cfg.learning_rate != first.client_cfg.learning_rate  # not run twice
  # A default outside the searched range is left to the sampler.
  wide = _setup('pfmsmtrec', out)
  wide.client_cfg = ClientConfig(learning_rate=0.5)
  assert 'learning_rate' not in tuning.defaults(wide, tuning.searched('pfmsmtrec'))


def test_defaults_whose_trial_failed_run_again(tmp_path):
  out = str(tmp_path / 'tune')
  setup = _setup('fedavg', out)

  def killed(setup, on_round):
    raise RuntimeError('the session ended')

  with pytest.raises(RuntimeError):
    tuning.tune(setup, _search(3), out, killed, log=lambda *_: None)
  calls = []
  tuning.tune(setup, _search(3), out, _fake_train(calls), log=lambda *_: None)
  assert calls[0].client_cfg.learning_rate == ClientConfig().learning_rate and len(calls) == 3
  states = [t['state'] for t in json.load(open(os.path.join(out, tuning.TRIALS_FILE)))['trials']]
  assert states == ['FAIL', 'COMPLETE', 'COMPLETE', 'COMPLETE']
