"""The pfmsmt command line: help, a synthetic prepare, and one-line errors."""

import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def _pfmsmt(*args, cwd=REPO, entry=('-m', 'federated.cli')):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, *entry, *args], capture_output=True, text=True, env=env,
                        cwd=cwd, timeout=300)


def test_usage_and_help():
  r = _pfmsmt()
  assert r.returncode == 2 and 'prepare' in r.stdout
  r = _pfmsmt('prepare', '--help')
  assert r.returncode == 0
  for flag in ('--dataset', '--rows_per_scenario', '--on_bad_row', '--statistics_scope', '--scenario_column'):
    assert flag in r.stdout
  r = _pfmsmt('nonsense')
  assert r.returncode == 2 and 'unknown subcommand' in r.stderr


def test_prepare_synthetic_with_flagfile(tmp_path):
  flagfile = tmp_path / 'flags.txt'
  flagfile.write_text(f'--rows_per_scenario=300\n--output={tmp_path / "out"}\n')
  r = _pfmsmt('prepare', f'--flagfile={flagfile}', '--seed=2')
  assert r.returncode == 0, r.stderr
  assert 'oracle:ctr' in r.stdout and 'total: read 1200, kept 1200' in r.stdout
  summary = json.load(open(tmp_path / 'out' / 'summary.json'))
  assert summary['config']['seed'] == 2 and summary['config']['rows_per_scenario'] == 300


def test_prepare_runs_without_tensorflow(tmp_path):
  """Importing TensorFlow took longer than preparing 300,000 rows, and 600 MiB: prepare does not need it, nor
  scipy.stats (half a second of start-up)."""
  probe = ('import atexit, sys; atexit.register(lambda: print("imported:", "tensorflow" in sys.modules, '
           '"scipy.stats" in sys.modules)); from federated.cli import main; main()')
  r = _pfmsmt('prepare', '--rows_per_scenario=300', f'--output={tmp_path}/o', entry=('-c', probe))
  assert r.returncode == 0, r.stderr
  assert 'kept 1200' in r.stdout and 'imported: False False' in r.stdout


def test_user_errors_are_one_line_with_a_hint(tmp_path):
  bad = tmp_path / 'bad.csv'
  bad.write_text('app,city,price,click\nx,p,1,2\n')
  r = _pfmsmt('prepare', '--dataset=csv', f'--input={bad}', f'--output={tmp_path / "o"}', '--scenario_column=app',
              '--categorical_columns=city', '--numerical_columns=price', '--label_columns=click')
  assert r.returncode == 2
  assert 'Traceback' not in r.stderr
  assert f"error: file {bad}, row 2, column 'click'" in r.stderr
  assert 'hint:' in r.stderr
  r = _pfmsmt('prepare', '--dataset=census', f'--output={tmp_path / "o"}')
  assert r.returncode == 2 and '--input is required for --dataset=census' in r.stderr
  r = _pfmsmt('prepare', '--dataset=bogus')
  assert r.returncode != 0 and 'bogus' in r.stderr
  # With TensorFlow's own log level (no TF_CPP_MIN_LOG_LEVEL set): its CUDA registration lines are filtered out
  # of standard error (federated/startup.py), so a user error is still exactly two lines.
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  r = subprocess.run([sys.executable, '-m', 'federated.cli', 'prepare', '--dataset=census', f'--output={tmp_path / "o"}'],
                     capture_output=True, text=True, env={**env, 'PYTHONPATH': REPO}, cwd=REPO, timeout=300)
  assert r.returncode == 2 and r.stderr.splitlines()[0].startswith('error: --input is required'), r.stderr
  assert len(r.stderr.splitlines()) == 2 and 'Unable to register' not in r.stderr, r.stderr


def test_describe_prints_roles_and_traffic(tmp_path):
  data = tmp_path / 'data'
  assert _pfmsmt('prepare', '--rows_per_scenario=200', f'--output={data}').returncode == 0
  r = _pfmsmt('describe', f'--data={data}', '--algorithm=pfmsmtrec', '--expert_units=16,8')
  assert r.returncode == 0, r.stderr
  for text in ('personalized/experts', 'personalized/tower/ctcvr', 'BatchNorm variables are local', 'bytes'):
    assert text in r.stdout
  # The summary's upload is the listed values' bytes less the non-parameter ones: counts [K], weight, one loss
  # per task, examples, and the telemetry norm [K] (K = 4 scenarios, 2 tasks).
  summary = int(re.search(r'among 4 clients: up ([\d,]+) bytes', r.stdout).group(1).replace(',', ''))
  listed = int(re.search(r'client -> server, each round \(\d+ values, ([\d,]+) bytes', r.stdout).group(1).replace(',', ''))
  assert summary == listed - 4 * (4 + 1 + 2 + 1 + 4)
  # Zero traffic for `local` and the unused-rule error are checked in-process in tests/test_template.py.


def test_train_help_and_errors(tmp_path):
  r = _pfmsmt('train', '--help')
  assert r.returncode == 0
  for flag in ('--algorithm', '--rounds', '--local_epochs', '--tau', '--reg_lambda', '--eval_every', '--[no]resume',
               '--expert_units', '--learning_rate', '--batch_size', '--[no]task_pcgrad', '--conflict'):
    assert flag in r.stdout, flag
  blocked = tmp_path / 'file'
  blocked.write_text('x')
  r = _pfmsmt('train', f'--output={blocked / "run"}')
  assert r.returncode == 2 and 'error:' in r.stderr and 'Traceback' not in r.stderr


def test_train_errors_before_any_training(tmp_path):
  """Checked in-process (no TensorFlow start-up per case); the CLI turns them into one line, as above."""
  import pytest  # pylint: disable=g-import-not-at-top
  from federated import training  # pylint: disable=g-import-not-at-top
  from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # pylint: disable=g-import-not-at-top
  from federated.cli import common  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf.config import ModelConfig  # pylint: disable=g-import-not-at-top

  def setup(**kw):
    return RunSetup(TrainConfig(**kw), ModelConfig(), ClientConfig(), AggregationConfig())

  with pytest.raises(FileNotFoundError, match='holds no run to resume'):
    training.train(setup(output=str(tmp_path / 'r'), resume=True))
  with pytest.raises(ValueError, match='--output'):
    TrainConfig()
  with pytest.raises(ValueError, match='unknown algorithm'):
    from federated import algorithms  # pylint: disable=g-import-not-at-top
    algorithms.get('fedsgd')
  (tmp_path / 'used').mkdir()
  (tmp_path / 'used' / 'x').write_text('x')
  with pytest.raises(FileExistsError, match='--resume'):
    training.train(setup(output=str(tmp_path / 'used')))
  assert issubclass(FileExistsError, common.USER_ERRORS) and issubclass(PermissionError, common.USER_ERRORS)


def test_evaluate_compare_export_help_and_errors(tmp_path):
  r = _pfmsmt()
  for name in ('evaluate', 'compare', 'export', 'inspect'):
    assert name in r.stdout
  expected = {'compare': ('--algorithms', '--seeds', '--rounds', '--tau', '--expert_units', '--reference',
                          '--select'),
              'evaluate': ('--run', '--data', '--split'),
              'inspect': ('--run', '--rounds', '--output'),
              'export': ('--run', '--output', '--scenarios', '--version')}
  for name, wanted in expected.items():
    r = _pfmsmt(name, '--help')
    assert r.returncode == 0, r.stderr
    for flag in wanted:
      assert flag in r.stdout, (name, flag)
  r = _pfmsmt('evaluate', f'--run={tmp_path}')
  assert r.returncode == 2 and 'is not a run directory' in r.stderr and 'Traceback' not in r.stderr
  r = _pfmsmt('inspect', f'--run={tmp_path}')
  assert r.returncode == 2 and 'aggregation.jsonl not found' in r.stderr and 'Traceback' not in r.stderr
  r = _pfmsmt('compare', '--algorithms=pfmsmtrec,fedsgd', f'--output={tmp_path}')
  assert r.returncode == 2 and 'unknown' in r.stderr and 'fedsgd' in r.stderr
