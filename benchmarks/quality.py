"""Quality benchmark: the paper's algorithms (ablations, the pooled reference) and the logistic row, per dataset.

Datasets: the synthetic default (whose oracle, the AUC of the true probabilities, bounds every model), its
named regimes `synthetic_clustered` and `synthetic_unequal` (data_pipelines/synthetic.py REGIMES, fixed
before any algorithm ran on them) and Census-Income from ../shared/data split by race or by sex (skipped with
a message when absent). The protocol: every algorithm gets the same rounds, local epochs and batch size, and
either the same learning rate and settings (the default) or, with --tuned, its own settings found on valid
with the same budget of trials as every other algorithm (benchmarks/quality_tuned.sh: the tuned plan); models
are evaluated on the valid split every round and each scenario deploys its best (`--select`), tested once;
5 seeds, run seed by seed; differences to pfmsmtrec paired by seed with 95% t intervals. Synthetic test
sets have 50,000 rows per scenario, so a test set's own AUC uncertainty stays below the differences.

  python benchmarks/quality.py            # the paper's algorithms, 5 seeds (hours on 2 cores)
  python benchmarks/quality.py --quick    # pfmsmtrec, fedavg, fedbn, local; 1 seed
  python benchmarks/quality.py --report_only   # the report from the runs finished so far (no training)
  python benchmarks/quality.py --tuned --budget=12   # each algorithm tuned on valid first (pfmsmt tune)

Writes benchmarks/results/quality_<dataset>.md, .csv and _paired.csv and prints each target as met or
missed. Runs are kept under --workdir, so a killed benchmark continues where it stopped; each finished run
and each tuning trial is also copied to --ledger (benchmarks/results/ledger/<report>/, committed), from which
a clean checkout on another machine restores them first (federated/ledger.py), so the benchmark's hours of
runs add up across machines and sessions.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
from absl import app, flags, logging  # pylint: disable=g-multiple-import

from data_pipelines import synthetic  # noqa: E402
from data_pipelines.config import PrepareConfig  # noqa: E402
import dataclasses  # noqa: E402

from data_pipelines import prepare  # noqa: E402
from federated import algorithms, comparison, experiment, ledger, runtime, training, tuning  # noqa: E402
from federated.config import CompareConfig, RunSetup, TrainConfig, TuneConfig  # noqa: E402

QUICK_ALGORITHMS = ('pfmsmtrec', 'fedavg', 'fedbn', 'local')
FEDERATED_BASELINES = tuple(a.name for a in algorithms.all_algorithms() if a.family == 'baseline')
ABLATIONS = tuple(a.name for a in algorithms.all_algorithms() if a.family == 'ablation')
VARIANTS = tuple(a.name for a in algorithms.all_algorithms() if a.family == 'variant')
CENSUS = os.path.join(REPO, '..', 'shared', 'data', 'census-income', 'census-income.test.gz')

flags.DEFINE_boolean('quick', False, 'Four algorithms, one seed: a check within 15 minutes.')
flags.DEFINE_list('datasets', ['synthetic', 'census'], 'synthetic, synthetic_clustered, synthetic_unequal (the '
                  'named regimes of data_pipelines/synthetic.py), census (scenarios by race) and/or census_sex '
                  '(the same rows, scenarios by sex).')
flags.DEFINE_list('algorithms', [], 'Override the algorithms (default: the paper\'s algorithms and pfmsmtrec\'s '
                  'variants, or the quick four).')
flags.DEFINE_integer('seeds', 5, 'Seeds per algorithm (1 with --quick).')
flags.DEFINE_integer('test_rows_per_scenario', 50_000, 'synthetic: test rows per scenario.')
flags.DEFINE_enum('select', 'best_per_scenario', ['last', 'best', 'best_per_scenario'], 'Model selection on valid.')
flags.DEFINE_boolean('report_only', False, 'Write the reports from the finished runs only; train nothing.')
flags.DEFINE_boolean('tuned', False, 'First search every algorithm\'s settings with `pfmsmt tune` (--budget trials on '
                     'valid, seed 0), then run each at its best settings (reports quality_<dataset>_tuned.*).')
flags.DEFINE_integer('budget', 12, 'With --tuned: trials per algorithm, the same for every algorithm.')
flags.DEFINE_integer('trial_seeds', 1, 'With --tuned: runs per trial, scored by their mean valid AUC (pfmsmt tune '
                     '--trial_seeds).')
flags.DEFINE_string('tuned_from', '', 'With --tuned: the settings of another dataset\'s finished searches (e.g. '
                    'synthetic for synthetic_clustered, census for census_sex), as the tuned plan in docs/CHOICES.md '
                    'reuses them, instead of searching on this dataset.')
flags.DEFINE_string('searches_from', '', 'With --tuned: copy the finished searches of DATASET\'s tuned report (e.g. '
                    'census) for the algorithms that have one, and search only the others here, with the same '
                    '--budget: a variant added after the plan, compared at today\'s code with the plan\'s settings '
                    'of its competitors.')
flags.DEFINE_list('train_seeds', [], 'Train only these seeds, in this order (e.g. 4,3 in a second process while the '
                  'first goes 0, 1, 2); the report reads every finished run.')
flags.DEFINE_string('suffix', '', 'Names a set of runs apart from the dataset\'s main ones: its reports are '
                    'quality_<dataset>_<suffix>.*, its runs <workdir>/<dataset>_<suffix> and <ledger>/<dataset>_<suffix> '
                    '(e.g. a variant\'s rule, trained at other code than the main reports).')
flags.DEFINE_integer('rounds', 10, 'Communication rounds (the same for every algorithm).')
flags.DEFINE_integer('rows_per_scenario', 25_000, 'synthetic: rows per scenario.')
flags.DEFINE_string('census_input', CENSUS, 'census: the raw Census-Income file or folder.')
flags.DEFINE_string('workdir', os.path.join(REPO, 'runs', 'bench-quality'), 'Where the runs are kept.')
flags.DEFINE_string('results', os.path.join(REPO, 'benchmarks', 'results'), 'Where the reports are written.')
flags.DEFINE_string('ledger', os.path.join(REPO, 'benchmarks', 'results', 'ledger'), 'Where the finished runs\' '
                    'metrics and the tuning records are kept and restored from, one folder per report; empty: none.')
FLAGS = flags.FLAGS


def targets(table, dataset: str, oracle, results=()) -> list:
  """One line per target of the issue, met or missed, with the numbers; a variant's difference to the best
  federated baseline with its paired 95% interval where `results` (the runs) are given."""
  means = {r.algorithm: r.auc_mean for r in table.itertuples() if r.scenario == comparison.MEAN}
  if 'pfmsmtrec' not in means:
    return []
  ours = means['pfmsmtrec']
  baselines = {a: v for a, v in means.items() if a in FEDERATED_BASELINES}
  lines = []
  if baselines:
    best = max(baselines, key=baselines.get)
    if dataset.startswith('synthetic'):
      ok = ours >= baselines[best] + 0.005
      lines.append(f'- target pfmsmtrec >= best federated baseline + 0.005: {"met" if ok else "MISSED"} '
                   f'({ours:.4f} vs {best} {baselines[best]:.4f}, {ours - baselines[best]:+.4f})')
    else:
      ok = all(ours >= v for v in baselines.values())
      lines.append(f'- target pfmsmtrec >= every federated baseline: {"met" if ok else "MISSED"} '
                   f'({ours:.4f} vs best {best} {baselines[best]:.4f}, {ours - baselines[best]:+.4f})')
  if oracle:
    gap = oracle[comparison.MEAN] - ours
    lines.append(f'- target within 0.01 of the oracle: {"met" if gap <= 0.01 else "MISSED"} '
                 f'(oracle {oracle[comparison.MEAN]:.4f}, gap {gap:.4f})')
  best = max(baselines, key=baselines.get) if baselines else None
  # Each federated baseline's paired differences, for the variants' verdict: ahead of every one of them with
  # the interval above 0 (the issue's target), not only of the best mean.
  pairs = {b: comparison.paired_differences(list(results), b).set_index('algorithm') for b in baselines} \
      if results else {}
  for a in VARIANTS:  # beyond ALGORITHM.md: held to the same target, with its own row
    if a in means and baselines:
      against = f'{means[a] - baselines[best]:+.4f}'
      verdict = ''
      if pairs:
        pair = pairs[best].loc[a]
        against = f'{pair.diff_mean:+.4f} [{pair.ci_low:+.4f}, {pair.ci_high:+.4f}]'
        short = [b for b in baselines if not pairs[b].loc[a].ci_low > 0]
        verdict = ('; ahead of every federated baseline with the interval above 0: ' +
                   ('yes' if not short else f'no (not of {", ".join(short)})'))
      lines.append(f'- variant {a}: {means[a]:.4f}, {means[a] - ours:+.4f} against pfmsmtrec, '
                   f'{against} against the best federated baseline ({best}){verdict}')
  for a in ABLATIONS:
    if a in means:
      lines.append(f'- {a}: {means[a]:.4f}; the module it removes is worth {ours - means[a]:+.4f} mean AUC')
  if 'centralized' in means:
    lines.append(f'- centralized (pooled rows, not private): {means["centralized"]:.4f} ({ours - means["centralized"]:+.4f})')
  return lines


def _settings(dataset: str) -> dict:
  """The flags a report's runs depend on besides algorithm and seed: a ledger is only restored under the same."""
  return {'dataset': dataset, 'rounds': FLAGS.rounds, 'select': FLAGS.select,
          'budget': FLAGS.budget if FLAGS.tuned else None, 'tuned_from': FLAGS.tuned_from or None,
          'searches_from': FLAGS.searches_from or None,
          'trial_seeds': FLAGS.trial_seeds if FLAGS.tuned and FLAGS.trial_seeds > 1 else None,  # None: 1, as before
          'rows_per_scenario': FLAGS.rows_per_scenario if dataset == 'synthetic' else None,
          'test_rows_per_scenario': FLAGS.test_rows_per_scenario if dataset.startswith('synthetic') else None}


def _restore(dataset: str, out: str, book: str) -> None:
  path = os.path.join(book, 'settings.json')
  if os.path.exists(path):
    with open(path) as f:
      kept = json.load(f)
    differ = {k: (kept.get(k), v) for k, v in _settings(dataset).items() if kept.get(k) != v}
    if differ:  # a setting added since the ledger was written is unset there (None), as it was
      raise app.UsageError(f'{book} holds runs made with other flags ({{flag: (the ledger\'s, yours)}}: {differ}); '
                           'use its flags, or --ledger= for none, or another --ledger')
  restored = ledger.restore(book, out)
  if restored:
    print(f'{dataset}: {len(restored)} result file(s) restored from {book}', flush=True)


def _saver(dataset: str, out: str, book: str):
  """A callback that copies OUT's new results to the ledger BOOK (nothing without a ledger)."""
  def save(*_):
    if book and ledger.save(out, book):
      with open(os.path.join(book, 'settings.json'), 'w') as f:
        json.dump(_settings(dataset), f, indent=1)
  return save


def _searches_of(dataset: str) -> str:
  """The tune folder of DATASET's tuned report, restored from its ledger; every search used must be finished
  there (tuning.load_best says which is not)."""
  out = os.path.join(FLAGS.workdir, f'{dataset}_tuned')
  if FLAGS.ledger:
    ledger.restore(os.path.join(FLAGS.ledger, f'{dataset}_tuned'), out)
  return os.path.join(out, 'tune')


def _copy_searches(source: str, tune_dir: str, algorithms_) -> None:
  """Seeds TUNE_DIR with SOURCE's search of each of ALGORITHMS_ that has one and is not searched here yet:
  its trials, restored by `tuning.tune` as finished, so the algorithm runs at the settings they chose."""
  for algorithm in algorithms_:
    record = os.path.join(source, algorithm, tuning.TRIALS_FILE)
    here = os.path.join(tune_dir, algorithm, tuning.TRIALS_FILE)
    if os.path.exists(record) and not os.path.exists(here):
      os.makedirs(os.path.dirname(here), exist_ok=True)
      shutil.copyfile(record, here)
      print(f'tune {algorithm}: the search of {record} reused', flush=True)


def _tune_all(prepare_cfg, train_cfg, algorithms_, out: str, save) -> str:
  """OUT/tune/<algorithm>/ for every algorithm (finished searches reused), on OUT/data; returns OUT/tune."""
  data, tune_dir = os.path.join(out, 'data'), os.path.join(out, 'tune')
  if FLAGS.report_only:  # the finished searches are read by the comparison
    return tune_dir
  planned = CompareConfig(algorithms=algorithms_, output='-').planned()
  if FLAGS.searches_from:
    _copy_searches(_searches_of(FLAGS.searches_from), tune_dir, planned)
  if not os.path.exists(os.path.join(data, 'summary.json')):
    prepare.prepare(dataclasses.replace(prepare_cfg, output=data, overwrite=True), log=lambda *_: None)
  search = TuneConfig(FLAGS.budget, trial_seeds=FLAGS.trial_seeds)
  with runtime.local_runtime():
    for algorithm in planned:
      setup = RunSetup(dataclasses.replace(train_cfg, data=data, algorithm=algorithm, seed=0,
                                           output=os.path.join(tune_dir, algorithm)))
      best = tuning.tune(setup, search, setup.cfg.output, training.train_trial,
                         log=lambda line, a=algorithm: print(f'tune {a}: {line}', flush=True), on_trial=save)
      print(f'tune {algorithm}: best valid mean AUC {best["score"]:.4f} with {best["params"]}', flush=True)
  return tune_dir


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  algorithms = tuple(FLAGS.algorithms) or (QUICK_ALGORITHMS if FLAGS.quick else
                                           experiment.PAPER_ALGORITHMS + VARIANTS)
  seeds = 1 if FLAGS.quick else FLAGS.seeds
  command = ' '.join(['python'] + [shlex.quote(a) for a in sys.argv])
  for dataset in FLAGS.datasets:
    if dataset == 'synthetic':
      prepare_cfg = PrepareConfig(dataset='synthetic', rows_per_scenario=FLAGS.rows_per_scenario,
                                  test_rows_per_scenario=FLAGS.test_rows_per_scenario)
    elif dataset.startswith('synthetic_') and dataset[len('synthetic_'):] in synthetic.REGIMES:
      # A named regime sets its own rows per scenario (the flag is for the default).
      prepare_cfg = PrepareConfig(dataset='synthetic', regime=dataset[len('synthetic_'):],
                                  test_rows_per_scenario=FLAGS.test_rows_per_scenario)
    elif dataset in ('census', 'census_sex'):
      if not os.path.exists(FLAGS.census_input):
        print(f'{dataset}: skipped, {FLAGS.census_input} is absent')
        continue
      prepare_cfg = PrepareConfig(dataset='census', input=os.path.abspath(FLAGS.census_input),
                                  scenario_column='sex' if dataset == 'census_sex' else '')
    else:
      raise app.UsageError(f'unknown dataset {dataset!r}')
    name = f'{dataset}_quick' if FLAGS.quick else f'{dataset}_tuned' if FLAGS.tuned else dataset
    name += f'_{FLAGS.suffix}' if FLAGS.suffix else ''
    train_cfg = TrainConfig(rounds=FLAGS.rounds, eval_every=1, select=FLAGS.select, output='-')
    out, book = os.path.join(FLAGS.workdir, name), FLAGS.ledger and os.path.join(FLAGS.ledger, name)
    if book:
      _restore(dataset, out, book)
    save = _saver(dataset, out, book)
    if FLAGS.tuned and FLAGS.tuned_from:
      tuned = _searches_of(FLAGS.tuned_from)
    else:
      tuned = _tune_all(prepare_cfg, train_cfg, algorithms, out, save) if FLAGS.tuned else ''
    exp = experiment.Experiment(
        prepare=prepare_cfg, compare=CompareConfig(algorithms=algorithms, seeds=seeds, output=out, tuned=tuned),
        train=train_cfg)
    results = experiment.run_runs(exp, log=lambda line: print(f'{dataset}: {line}', flush=True),
                                  train_missing=not FLAGS.report_only,
                                  train_seeds=[int(s) for s in FLAGS.train_seeds] or None, on_run=save)
    save()  # also what a process without a ledger finished
    if not results:
      print(f'{dataset}: no finished runs yet')
      continue
    table = comparison.summarize(results)
    lines = targets(table, dataset, comparison.oracle_row(results), results)
    finished = {a: sum(m['algorithm'] == a for m in results) for a in dict.fromkeys(m['algorithm'] for m in results)}
    notes = [f'{len(exp.compare.planned())} algorithms x {seeds} seed(s) planned ({len(results)} runs finished: '
             + ', '.join(f'{a} {n}' for a, n in finished.items()) + f'), {FLAGS.rounds} rounds'
             + ('' if FLAGS.tuned else ' of 1 local epoch') + f', valid evaluated every round, selection '
             f'{FLAGS.select}, default model, ' +
             (f'each algorithm at the best of {FLAGS.budget} `pfmsmt tune` trials (seed 0, unpromising ones stopped '
              'by the median rule, scored on valid' +
              (f' of {FLAGS.tuned_from}, whose settings this dataset reuses), ' if FLAGS.tuned_from else
               f'; the searches of {FLAGS.searches_from}\'s tuned report reused for every algorithm that has one, '
               'the others searched here with the same budget; every run trained at this code), '
               if FLAGS.searches_from else '), ')
              if FLAGS.tuned else 'default settings (untuned), ') +
             '2-core CPU.' + (' This report was written from the finished runs (--report_only); the same command '
                              'without --report_only trained them.' if FLAGS.report_only else ''),
             '', 'Targets:', '', *lines]
    os.makedirs(FLAGS.results, exist_ok=True)
    kinds = [k for k in ('tuned' if FLAGS.tuned else '', FLAGS.suffix) if k]
    title = f'Quality: {dataset}' + (f' ({", ".join(kinds)})' if kinds else '')
    comparison.write_report(results, FLAGS.results, command, title=title, stem=f'quality_{name}',
                            notes=notes, plots=False, reference='pfmsmtrec' if 'pfmsmtrec' in finished else None)
    print('\n'.join([f'{dataset}:'] + lines), flush=True)
    print(f'wrote {os.path.join(FLAGS.results, f"quality_{name}.md")}')


if __name__ == '__main__':
  app.run(main)
