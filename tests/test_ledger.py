"""The ledger keeps a comparison's finished results apart from its run directories and restores them whole."""

import os

from federated import ledger


def _write(root, relative, text):
  path = os.path.join(str(root), relative)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def _read(root, relative):
  with open(os.path.join(str(root), relative)) as f:
    return f.read()


def test_save_keeps_finished_results_only_and_copies_changes(tmp_path):
  out, book = tmp_path / 'out', tmp_path / 'ledger'
  _write(out, 'runs/fedavg/seed_0/metrics.json', '{"a": 1}')
  _write(out, 'runs/fedavg/seed_0/rounds.csv', 'round\n1\n')
  _write(out, 'runs/fedavg/seed_0/checkpoints/state.npz', 'big')
  _write(out, 'runs/fedavg/seed_1/rounds.csv', 'round\n1\n')  # killed: no metrics.json
  _write(out, 'tune/ditto/tuning.json', '{"complete": 1}')
  _write(out, 'tune/ditto/study.db', 'sqlite')
  _write(out, 'tune/ditto/trials/trial_0/metrics.json', '{}')
  _write(out, 'data/summary.json', '{}')
  assert sorted(ledger.save(str(out), str(book))) == [
      'runs/fedavg/seed_0/metrics.json', 'runs/fedavg/seed_0/rounds.csv', 'tune/ditto/tuning.json']
  assert ledger.save(str(out), str(book)) == []  # nothing changed
  _write(out, 'tune/ditto/tuning.json', '{"complete": 2}')
  assert ledger.save(str(out), str(book)) == ['tune/ditto/tuning.json']
  assert _read(book, 'tune/ditto/tuning.json') == '{"complete": 2}'


def test_restore_fills_what_the_output_has_not_finished_and_never_overwrites(tmp_path):
  out, book = tmp_path / 'out', tmp_path / 'ledger'
  assert ledger.restore(str(book), str(out)) == []  # no ledger yet
  for seed in (0, 1):
    _write(book, f'runs/fedavg/seed_{seed}/metrics.json', f'{{"seed": {seed}}}')
    _write(book, f'runs/fedavg/seed_{seed}/rounds.csv', 'round\n1\n2\n')
  _write(book, 'tune/ditto/tuning.json', '{"complete": 3}')
  _write(out, 'runs/fedavg/seed_0/metrics.json', '{"seed": "here"}')  # finished here: kept
  _write(out, 'runs/fedavg/seed_0/rounds.csv', 'round\n1\n')
  _write(out, 'runs/fedavg/seed_1/rounds.csv', 'round\n1\n')  # killed here: replaced as a whole
  assert sorted(ledger.restore(str(book), str(out))) == [
      'runs/fedavg/seed_1/metrics.json', 'runs/fedavg/seed_1/rounds.csv', 'tune/ditto/tuning.json']
  assert _read(out, 'runs/fedavg/seed_0/metrics.json') == '{"seed": "here"}'
  assert _read(out, 'runs/fedavg/seed_0/rounds.csv') == 'round\n1\n'
  assert _read(out, 'runs/fedavg/seed_1/rounds.csv') == 'round\n1\n2\n'
  assert not [f for _, _, files in os.walk(str(out)) for f in files if f.endswith('.tmp')]
