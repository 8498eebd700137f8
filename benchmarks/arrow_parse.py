"""The floor under prepare's pass 1: what pyarrow alone spends parsing an AliExpress-layout CSV, by column types.

Each setting reads every file of the folder with `pyarrow.csv.read_csv` (its blocks on every core), in a child
process of its own, and reports the child's CPU seconds; `+ pandas` also converts each table with `to_pandas`,
as prepare does. The settings, taken in turn --repeats times:
- ids as dictionaries (how prepare reads text), every column;
- ids as integers, every column (what prepare would save by comparing ids as numbers);
- only the 16 id columns converted, as integers (what tokenizing the rows costs, nearly).

  python benchmarks/arrow_parse.py --csv=FOLDER [--repeats=3]   (FOLDER: an AliExpress processed layout)

Writes benchmarks/results/arrow_parse.md.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import report_file  # noqa: E402  (benchmarks/, this script's folder)
from absl import app, flags  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import aliexpress  # noqa: E402

flags.DEFINE_string('csv', '', 'The AliExpress processed-layout folder.')
flags.DEFINE_integer('repeats', 3, 'Runs of each setting, taken in turn; the medians are reported.')
flags.DEFINE_string('csv_description', '1,000,000 rows written by data_pipeline._write_aliexpress_csv',
                    'What --csv holds, for the report.')
flags.DEFINE_string('output', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'arrow_parse.md'),
                    'Report file.')
flags.DEFINE_string('child', '', 'internal: run one setting and print its seconds as JSON.')
FLAGS = flags.FLAGS

IDS = aliexpress.PROCESSED_CATEGORICAL
NUMBERS = aliexpress.PROCESSED_NUMERICAL + ['click', 'conversion']
SETTINGS = ('dictionary ids', 'dictionary ids + pandas', 'integer ids', 'integer ids + pandas', 'ids only')


def _child(setting: str) -> None:
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.csv as pa_csv  # pylint: disable=g-import-not-at-top
  ids = pa.dictionary(pa.int32(), pa.string()) if setting.startswith('dictionary') else pa.int64()
  types = {c: ids for c in IDS}
  if setting != 'ids only':
    types.update({c: pa.float64() for c in NUMBERS})
  convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types))
  start = time.perf_counter()
  before = resource.getrusage(resource.RUSAGE_SELF)
  for path in sorted(glob.glob(os.path.join(FLAGS.csv, '*', '*.csv'))):
    table = pa_csv.read_csv(path, convert_options=convert)
    if setting.endswith('pandas'):
      table.to_pandas()
  after = resource.getrusage(resource.RUSAGE_SELF)
  print(json.dumps({'seconds': time.perf_counter() - start,
                    'cpu': after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}))


def main(argv) -> None:
  del argv
  if FLAGS.child:
    _child(FLAGS.child)
    return
  if not FLAGS.csv:
    raise app.UsageError('--csv is required')
  runs = {s: [] for s in SETTINGS}
  for _ in range(FLAGS.repeats):
    for s in SETTINGS:
      out = subprocess.run([sys.executable, os.path.abspath(__file__), f'--csv={FLAGS.csv}', f'--child={s}'],
                           capture_output=True, text=True, check=True)
      runs[s].append(json.loads(out.stdout.strip().splitlines()[-1]))
  lines = ['# pyarrow alone on an AliExpress-layout CSV, by column types', '',
           f'Command: `python benchmarks/arrow_parse.py --csv=FOLDER --repeats={FLAGS.repeats}` (FOLDER: '
           f'{FLAGS.csv_description})  ',
           f'Machine: {report_file.machine("not imported")}  ',
           f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
           'Each setting in a child process of its own, the settings taken in turn; medians, and the CPU seconds '
           'of every run.', '', '| setting | seconds | CPU s | CPU s of each run |', '|---|---|---|---|']
  for s, r in runs.items():
    cpu = [x['cpu'] for x in r]
    lines.append(f'| {s} | {statistics.median(x["seconds"] for x in r):.2f} | {statistics.median(cpu):.2f} | '
                 f'{", ".join(f"{c:.2f}" for c in cpu)} |')
  report_file.publish(lines + [''], FLAGS.output)

if __name__ == '__main__':
  app.run(main)
