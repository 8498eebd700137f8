"""Speed and scale benchmark: TFF's overhead over plain Keras, batch size, round time against scenarios and rows.

Measured side by side in one run on this machine (synthetic data, default model and client settings):
1. examples per second of one PF-MSMTrec round (TFF process: broadcast, federated_select, every client's
   local epoch, template aggregation) versus `model.fit` of the same model on the same examples from the same
   tf.data pipeline, one epoch; the median of --repeats timed rounds and of --repeats timed epochs, after one
   untimed (tracing) round or epoch, rounds and epochs taken in turn. Target: TFF examples/s at least 0.8x
   Keras.
2. batch sizes 256 (the default), 1024 and 2048 (the public AliExpress setting): examples/s of a round and
   of an epoch, and the test AUC a --quality_rounds-round run reaches at each (selected on valid), so that a
   faster batch size is not bought with quality; then the same timings for `config.paper_config()`
   (embedding 128, 8 experts of (512, 256)) at batch 256 and 2048, at each --paper_rows_per_scenario, with
   the straight line through the round times: its intercept is what a round costs whatever its examples.
3. round time for 2, 4, 8 and 16 scenarios (fixed rows per scenario) and for 1x, 4x and 16x rows per
   scenario (4 scenarios), each the median of --scaling_repeats timed rounds, the seven points' rounds taken
   in turn (so that a drift in the machine's speed is shared by every point), with the fitted straight lines
   and how far the points are from them.
4. peak RSS (the training process and its TFF workers together) of a 2-round run at 1x and 16x rows.

  python benchmarks/speed.py [--rows_per_scenario=2500] [--repeats=3]

Writes benchmarks/results/speed.md.
"""

from __future__ import annotations

import csv
import functools
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
import prepared  # noqa: E402  (benchmarks/, this script's folder)
import process_tree  # noqa: E402
import report_file  # noqa: E402
import round_timer  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import pipeline, prepare  # noqa: E402
from data_pipelines import spec as spec_lib  # noqa: E402
from data_pipelines.config import PipelineConfig, PrepareConfig  # noqa: E402
from federated import runtime, trainers, training  # noqa: E402
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

SCENARIO_NAMES = ('NL', 'ES', 'FR', 'US', 'RU', 'DE', 'IT', 'PL', 'BR', 'MX', 'JP', 'KR', 'IN', 'CA', 'AU', 'SE')
BATCH_SIZES = (256, 1024, 2048)
PAPER_BATCH_SIZES = (256, 2048)

flags.DEFINE_integer('rows_per_scenario', 2_500, 'Rows per scenario at 1x (train + test).')
flags.DEFINE_integer('overhead_rows_per_scenario', 25_000, 'Rows per scenario of the TFF vs Keras comparison.')
flags.DEFINE_integer('repeats', 3, 'Timed rounds (and epochs) per point, after one untimed; the median is reported.')
flags.DEFINE_integer('scaling_repeats', 5, 'Timed rounds per point of the scaling lines, taken in turn across '
                     'the points after one untimed each; the median is reported.')
flags.DEFINE_integer('quality_rounds', 10, 'Rounds of the batch-size runs whose test AUC is reported.')
flags.DEFINE_list('paper_rows_per_scenario', ['2500', '10000'],
                  'Rows per scenario of the paper-model timings; with two sizes or more, the fixed cost of a round '
                  '(its state crossing to the executor and back) is told apart from its cost per example.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'speed.md'), 'Report file.')
FLAGS = flags.FLAGS


def _prepare(work: str, name: str, rows: int, scenarios: int = 4) -> str:
  out = os.path.join(work, name)
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=rows, scenarios=SCENARIO_NAMES[:scenarios]),
                  log=lambda *_: None)
  return out


def _setup(data: str, output: str, model=None, batch_size: int = 256, rounds: int = 1) -> RunSetup:
  return RunSetup(TrainConfig(data=data, output=output, rounds=rounds), model or model_config.ModelConfig(),
                  ClientConfig(batch_size=batch_size), AggregationConfig())


def tff_round_step(data: str, work: str, model=None, batch_size: int = 256):
  """round_timer.round_step of a PF-MSMTrec run on `data`."""
  return round_timer.round_step(
      _setup(data, os.path.join(work, f'run-{os.path.basename(data)}-{batch_size}'), model, batch_size))


def interleaved_medians(steps: dict, repeats: int) -> dict:
  """{key: median seconds of `repeats` steps after the first (tracing, warm-up)}, the steps taken in turn
  (round_timer.interleaved), so that every point of a comparison or a fitted line ran under the same load."""
  times = round_timer.interleaved(steps, repeats + 1)
  return {key: float(np.median(t[1:])) for key, t in times.items()}


def _parameters(data: str, model=None) -> int:
  return trainers.make_model_fn(_setup(data, '-', model), spec_lib.load_spec(data))().count_params()


def keras_epoch_step(data: str, model=None, batch_size: int = 256):
  """A function that runs one `model.fit` epoch over the same examples and pipeline as a round and returns
  its seconds."""
  spec = spec_lib.load_spec(data)
  client = ClientConfig(batch_size=batch_size)
  cfg = PipelineConfig(batch_size=client.batch_size, shuffle_buffer=client.shuffle_buffer)
  ds = None
  for s in spec.scenario_names:
    d = pipeline.make_dataset(data, spec, 'train', s, cfg)
    ds = d if ds is None else ds.concatenate(d)
  model = trainers.make_model_fn(_setup(data, '-', model, batch_size), spec)()
  model.compile(tf.keras.optimizers.Adam(client.learning_rate),
                loss={t: tf.keras.losses.BinaryCrossentropy() for t in spec.task_names},
                loss_weights={t: 1.0 / len(spec.task_names) for t in spec.task_names})

  def step() -> float:
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    return time.perf_counter() - start

  return step


def batch_quality(data: str, work: str, batch_size: int) -> dict:
  """A --quality_rounds-round PF-MSMTrec run at this batch size: its test AUC and its rounds' median seconds."""
  setup = _setup(data, os.path.join(work, f'quality-{batch_size}'), batch_size=batch_size,
                 rounds=FLAGS.quality_rounds)
  result = training.train(setup, log=lambda *_: None)
  with open(os.path.join(setup.cfg.output, 'rounds.csv')) as f:
    rounds = [float(r['train_seconds']) for r in csv.DictReader(f)]
  return {'auc': result['mean_auc'], 'round_s': float(np.median(rounds[1:])),
          'selected': sorted(set(result['selected_round'].values()))}


def peak_rss_mib(data: str, output: str) -> float:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  return process_tree.run([sys.executable, '-m', 'federated.cli', 'train', f'--data={data}', '--rounds=2',
                           f'--output={output}', '--eval_every=2'], env=env, cwd=REPO).peak_total_mib


def _fit(xs, ys):
  slope, intercept = np.polyfit(xs, ys, 1)
  fitted = slope * np.asarray(xs) + intercept
  worst = float(np.max(np.abs(fitted - ys) / np.asarray(ys)))
  return float(slope), float(intercept), worst


def _flag_text(value) -> str:
  return ','.join(map(str, value)) if isinstance(value, list) else str(value)


def _paper_line(batch: int, examples, tff, keras) -> str:
  """What the paper model's round costs whatever its examples (the fitted intercept), and where a round
  reaches 0.8x of `fit` if the lines hold."""
  t_slope, t_fixed, t_dev = _fit(examples, tff)
  k_slope, k_fixed, _ = _fit(examples, keras)
  deviation = f' (largest deviation from the line {t_dev:.1%})' if len(examples) > 2 else ''  # 2 points: a line
  line = (f'`paper_config()` at batch {batch}: a round costs {t_fixed:.1f} s whatever its examples plus '
          f'{t_slope * 1e4:.1f} s per 10,000{deviation}; `fit`: {k_fixed:.1f} s plus {k_slope * 1e4:.1f} s per '
          '10,000.')
  # TFF/Keras = (k_fixed + k_slope n) / (t_fixed + t_slope n) >= 0.8 for n >= (0.8 t_fixed - k_fixed) / gain
  gain = k_slope - 0.8 * t_slope
  if gain <= 0:
    return line + ' Per example the round is slower than 0.8x `fit`, so no size reaches 0.8x.'
  n = max(0.0, (0.8 * t_fixed - k_fixed) / gain)
  return line + f' By these lines a round reaches 0.8x `fit` from about {n:,.0f} train examples.'


def _examples_per_s(n: int, seconds: float) -> str:
  return f'{n / seconds:,.0f}'


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  base = FLAGS.rows_per_scenario
  scenario_counts, multiples = (2, 4, 8, 16), (1, 4, 16)
  paper = model_config.paper_config()
  paper_rows = sorted(int(r) for r in FLAGS.paper_rows_per_scenario)
  with tempfile.TemporaryDirectory() as work:
    overhead_data = _prepare(work, 'overhead', FLAGS.overhead_rows_per_scenario)
    paper_data = {r: _prepare(work, f'paper{r}', r) for r in paper_rows}
    # Each model size in a runtime of its own: its executors start with the memory settings for that size, as
    # `pfmsmt train` gives them (runtime.use_model_size).
    tff_step = functools.partial(tff_round_step, work=work)
    round_and_epoch = (('tff', tff_step), ('keras', keras_epoch_step))  # compared in turn: round, epoch, ...
    runtime.use_model_size(_parameters(overhead_data))
    with runtime.local_runtime():
      timed = interleaved_medians({(kind, b): step(overhead_data, batch_size=b) for b in BATCH_SIZES
                                   for kind, step in round_and_epoch}, FLAGS.repeats)
      tff_s = {b: timed[('tff', b)] for b in BATCH_SIZES}
      keras_s = {b: timed[('keras', b)] for b in BATCH_SIZES}
      quality = {b: batch_quality(overhead_data, work, b) for b in BATCH_SIZES}
      scaling = interleaved_medians(
          {**{('k', k): tff_step(_prepare(work, f'k{k}', base, k)) for k in scenario_counts},
           **{('x', m): tff_step(_prepare(work, f'x{m}', base * m)) for m in multiples}}, FLAGS.scaling_repeats)
      by_scenarios = {k: scaling[('k', k)] for k in scenario_counts}
      by_rows = {m: scaling[('x', m)] for m in multiples}
    runtime.use_model_size(_parameters(paper_data[paper_rows[0]], paper))
    with runtime.local_runtime():
      timed = interleaved_medians({(kind, r, b): step(paper_data[r], model=paper, batch_size=b)
                                   for r in paper_rows for b in PAPER_BATCH_SIZES
                                   for kind, step in round_and_epoch}, FLAGS.repeats)
      tff_paper_s = {(r, b): timed[('tff', r, b)] for r in paper_rows for b in PAPER_BATCH_SIZES}
      keras_paper_s = {(r, b): timed[('keras', r, b)] for r in paper_rows for b in PAPER_BATCH_SIZES}
    rows = {k: prepared.split_rows(os.path.join(work, f'k{k}')) for k in scenario_counts}
    rows.update({f'x{m}': prepared.split_rows(os.path.join(work, f'x{m}')) for m in multiples})
    n_overhead = prepared.split_rows(overhead_data)
    n_paper = {r: prepared.split_rows(d) for r, d in paper_data.items()}
    rss = {m: peak_rss_mib(os.path.join(work, f'x{m}'), os.path.join(work, f'rss{m}')) for m in (1, 16)}
  ratio = keras_s[256] / tff_s[256]  # TFF examples/s over Keras examples/s
  k_slope, k_icpt, k_dev = _fit(list(by_scenarios), list(by_scenarios.values()))
  r_x = [rows[f'x{m}'] for m in multiples]
  r_slope, r_icpt, r_dev = _fit(r_x, list(by_rows.values()))
  cmd = 'python benchmarks/speed.py ' + ' '.join(
      f'--{k}={_flag_text(getattr(FLAGS, k))}' for k in (
          'rows_per_scenario', 'overhead_rows_per_scenario', 'repeats', 'scaling_repeats', 'quality_rounds',
          'paper_rows_per_scenario'))
  lines = [
      '# Speed and scale benchmark', '',
      f'Command: `{cmd}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      'Model and settings: the defaults (80k-parameter MMoE, batch 256, 1 local epoch, Adam 1e-3) unless a row '
      f'says otherwise; PF-MSMTrec. Every time is the median of {FLAGS.repeats} timed rounds or epochs, after one '
      'untimed (tracing, warm-up); a round and the `fit` epoch it is compared with were taken in turn (round, '
      'epoch, round, epoch, ...), so that both ran under the same load. The executors run with the memory '
      'settings `pfmsmt train` gives a model of that size (runtime.use_model_size: malloc for the default model, '
      'BFC for `paper_config()`).', '',
      '## TFF round versus plain Keras on the same examples', '',
      '| | seconds | examples/s |', '|---|---|---|',
      f'| one PF-MSMTrec round, {n_overhead:,} train examples over 4 scenarios | {tff_s[256]:.2f} | '
      f'{_examples_per_s(n_overhead, tff_s[256])} |',
      f'| one `model.fit` epoch, the same examples and pipeline | {keras_s[256]:.2f} | '
      f'{_examples_per_s(n_overhead, keras_s[256])} |',
      f'| **TFF examples/s over Keras examples/s** (target >= 0.8) | **{ratio:.2f}x** | |', '',
      '## Batch size: speed and the AUC it reaches', '',
      f'The same {n_overhead:,} examples. Test mean AUC of a {FLAGS.quality_rounds}-round PF-MSMTrec run at each '
      'batch size, models selected per scenario on valid (learning rate unchanged, 1e-3); its round time is the '
      'median of its rounds after the first.', '',
      '| model | batch | TFF round s | TFF examples/s | `fit` epoch s | `fit` examples/s | TFF / Keras | '
      f'test mean AUC after {FLAGS.quality_rounds} rounds (selected rounds) |', '|---|---|---|---|---|---|---|---|',
      *[f'| default | {b} | {tff_s[b]:.2f} | {_examples_per_s(n_overhead, tff_s[b])} | {keras_s[b]:.2f} | '
        f'{_examples_per_s(n_overhead, keras_s[b])} | {keras_s[b] / tff_s[b]:.2f}x | {quality[b]["auc"]:.4f} '
        f'({", ".join(map(str, quality[b]["selected"]))}; rounds of {quality[b]["round_s"]:.2f} s) |'
        for b in BATCH_SIZES],
      *[f'| `paper_config()`, {n_paper[r]:,} examples | {b} | {tff_paper_s[r, b]:.2f} | '
        f'{_examples_per_s(n_paper[r], tff_paper_s[r, b])} | {keras_paper_s[r, b]:.2f} | '
        f'{_examples_per_s(n_paper[r], keras_paper_s[r, b])} | {keras_paper_s[r, b] / tff_paper_s[r, b]:.2f}x | '
        'not run |' for r in paper_rows for b in PAPER_BATCH_SIZES], '',
      *[_paper_line(b, [n_paper[r] for r in paper_rows], [tff_paper_s[r, b] for r in paper_rows],
                    [keras_paper_s[r, b] for r in paper_rows]) for b in PAPER_BATCH_SIZES if len(paper_rows) > 1],
      '',
      f'## Round time against scenarios ({base:,} rows each)', '',
      f'Each point is the median of {FLAGS.scaling_repeats} rounds after an untimed one; the rounds of the seven '
      'points of this section and the next were taken in turn (one round of each point, then the next), so '
      'that a change in the machine\'s speed while they ran moves every point alike. The 4-scenario point and '
      'the 1x point are the same setting on two prepared copies: their difference is the noise left.', '',
      '| scenarios | train examples | seconds per round |', '|---|---|---|',
      *[f'| {k} | {rows[k]:,} | {s:.2f} |' for k, s in by_scenarios.items()],
      '', f'Fitted: {k_slope:.3f} s per scenario + {k_icpt:.2f} s; largest deviation from the line '
      f'{k_dev:.1%}.', '',
      '## Round time against rows per scenario (4 scenarios)', '',
      '| rows per scenario | train examples | seconds per round |', '|---|---|---|',
      *[f'| {m}x = {base * m:,} | {rows[f"x{m}"]:,} | {s:.2f} |' for m, s in by_rows.items()],
      '', f'Fitted: {r_slope * 1e4:.3f} s per 10,000 examples + {r_icpt:.2f} s; largest deviation from the line '
      f'{r_dev:.1%}.', '',
      '## Peak RSS of a 2-round `pfmsmt train` (process and TFF workers)', '',
      '| rows per scenario | peak RSS MiB |', '|---|---|',
      f'| 1x = {base:,} | {rss[1]:.0f} |', f'| 16x = {base * 16:,} | {rss[16]:.0f} |',
      f'| **ratio 16x / 1x** | **{rss[16] / rss[1]:.2f}** |', '',
  ]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
