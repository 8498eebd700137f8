"""Writes the README's "Results (measured)" section from benchmarks/results/*.md (never by hand).

  python benchmarks/render_readme.py        # after any benchmark; `make results` runs it

Each results file is included as written by its benchmark, headings moved below the README's own.
"""

from __future__ import annotations

import csv
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, 'benchmarks', 'results')
START, END = '<!-- results:start -->', '<!-- results:end -->'
# The regimes' algorithms: the paper's baselines, the new ones and the kept variant (no ablations there).
CLUSTERED_ALGORITHMS = ('pfmsmtrec,pfmsmtrec_personal_inputs,ditto,fedavg,local,fedbn,fedper,fedprox,centralized,'
                        'apfl,fedamp,fedavgm,fedhca2,fedrep')
# The tuned reports come first: only they give every algorithm the same tuning budget (issue 14's standard).
ORDER = [  # (file, what produced it)
    *[(f'quality_{d}_tuned.md', 'benchmarks/quality_tuned.sh') for d in
      ('synthetic', 'census', 'synthetic_clustered', 'synthetic_unequal', 'census_sex')],
    # The variant at tuned settings (docs/CHOICES.md): its own search, its competitors at the plan's settings,
    # everything at today's code.
    *[(f'quality_{d}_tuned_sized.md', f'python benchmarks/quality.py --tuned --budget=12 --searches_from={d} '
       f'--suffix=sized --datasets={d} --algorithms=pfmsmtrec,pfmsmtrec_sized,{rivals}')
      for d, rivals in (('census', 'fedprox,fedbn,fedavg,apfl'), ('synthetic', 'ditto,local,fedhca2,fedamp'))],
    # pfmsmtrec_sized's rule (docs/CHOICES.md): the variant beside pfmsmtrec and each dataset's best baseline,
    # at default settings and at the code of today, not at the tuned plan's.
    *[(f'quality_{d}_sized.md', f'python benchmarks/quality.py --datasets={d} --suffix=sized '
       f'--algorithms=pfmsmtrec,pfmsmtrec_sized,{rivals}')
      for d, rivals in (('synthetic', 'pfmsmtrec_personal_inputs,ditto'),
                        ('census', 'pfmsmtrec_personal_inputs,fedavg,pfmsmtrec_no_conflict,pfmsmtrec_no_fedbn,'
                         'pfmsmtrec_no_personalization,pfmsmtrec_no_reg,pfmsmtrec_no_tower_agg'),
                        ('synthetic_unequal', 'pfmsmtrec_personal_inputs,ditto,fedavg'),
                        ('synthetic_clustered', 'pfmsmtrec_personal_inputs,ditto,fedavg'),
                        ('census_sex', 'fedper,fedrep,ditto'))],
    ('quality_synthetic.md', 'python benchmarks/quality.py --datasets=synthetic'),
    ('telemetry_synthetic.md', 'python benchmarks/telemetry.py --datasets=synthetic'),
    ('quality_census.md', 'python benchmarks/quality.py --datasets=census'),
    ('telemetry_census.md', 'python benchmarks/telemetry.py --datasets=census'),
    ('quality_synthetic_clustered.md', 'python benchmarks/quality.py --datasets=synthetic_clustered '
     '--algorithms=' + CLUSTERED_ALGORITHMS),
    ('quality_synthetic_unequal.md', 'python benchmarks/quality.py --datasets=synthetic_unequal '
     '--algorithms=' + CLUSTERED_ALGORITHMS),
    ('quality_census_sex.md', 'python benchmarks/quality.py --datasets=census_sex --algorithms=pfmsmtrec,ditto,'
     'fedavg,fedbn,fedper,fedprox,local,centralized,pfmsmtrec_personal_inputs,logistic,apfl,fedamp,fedavgm,'
     'fedhca2,fedrep'),
    ('defaults.md', 'python benchmarks/defaults.py'),
    ('quality_census_quick.md', 'python benchmarks/quality.py --quick --datasets=census'),
    ('quality_synthetic_quick.md', 'python benchmarks/quality.py --quick --datasets=synthetic'),
    ('speed.md', 'python benchmarks/speed.py'),
    ('paper_round.md', 'python benchmarks/paper_round.py'),
    ('round_cost.md', 'python benchmarks/round_cost.py'),
    ('round_stages.md', 'python benchmarks/round_stages.py'),
    ('scale.md', 'python benchmarks/scale.py'),
    ('remote.md', 'python benchmarks/remote.py'),
    ('tls_soak.md', 'python benchmarks/tls_soak.py --soak_rounds=200'),
    ('data_pipeline.md', 'python benchmarks/data_pipeline.py'),
    ('prepare_stages.md', 'python benchmarks/prepare_stages.py'),
    ('arrow_parse.md', 'python benchmarks/arrow_parse.py'),
]


REFERENCES = ('centralized', 'logistic')  # pooled rows and a per-scenario linear model: not competitors


def verdict(paired_csv: str) -> str:
  """Whether pfmsmtrec is ahead of every competitor of one report (the algorithms that are neither a
  PF-MSMTrec variant or ablation nor a reference), from its paired differences to pfmsmtrec."""
  with open(paired_csv) as f:
    rows = [r for r in csv.DictReader(f) if r['reference'] == 'pfmsmtrec' and
            not r['algorithm'].startswith('pfmsmtrec') and r['algorithm'] not in REFERENCES]
  if not rows:
    return 'no competitor in this report'

  def shown(r) -> str:
    return f'{r["algorithm"]} ({float(r["diff_mean"]):+.4f} [{float(r["ci_low"]):+.4f}, {float(r["ci_high"]):+.4f}])'

  ahead = sorted((r for r in rows if float(r['ci_low']) > 0), key=lambda r: -float(r['diff_mean']))
  if ahead:
    return 'no: behind ' + ', '.join(map(shown, ahead))
  best = max(rows, key=lambda r: float(r['diff_mean']))
  if float(best['ci_high']) < 0:
    return f'yes: ahead of all {len(rows)} competitors, the closest {shown(best)}'
  tied = [r for r in rows if float(r['ci_high']) >= 0]
  return f'not shown: behind none, ahead of {len(rows) - len(tied)} of {len(rows)}, tied with ' + ', '.join(
      map(shown, sorted(tied, key=lambda r: -float(r['diff_mean']))))


def headlines() -> list:
  """The first lines of the section: whether pfmsmtrec beats every competitor on each dataset, each quality
  report's paired-difference sentence, wins and losses alike, and how the neural models compare with the
  logistic reference."""
  verdicts = []
  for name, _ in ORDER:
    paired = os.path.join(RESULTS, name[:-3] + '_paired.csv')
    if name.startswith('quality_') and os.path.exists(paired):
      verdicts.append(f'{name[len("quality_"):-3]}: {verdict(paired)}')
  lines = ['**Is pfmsmtrec ahead of every competitor, with the 95% interval of the paired difference above 0?** '
           '(the difference is competitor minus pfmsmtrec) ' + '; '.join(verdicts) + '.', ''] if verdicts else []
  variants, reports = [], []  # each report's variant lines (against its best federated baseline), its sentence
  for name, _ in ORDER:
    path = os.path.join(RESULTS, name)
    if name.startswith('quality_') and os.path.exists(path):
      text = open(path).read().splitlines()
      variants += [f'{name[len("quality_"):-3]}: {l[len("- variant "):]}' for l in text if l.startswith('- variant ')]
      found = [l for l in text if l.startswith('Paired by seed')]
      if found:
        reports.append(f'- **{name[len("quality_"):-3]}**: {found[0]}')
    if name == 'defaults.md' and os.path.exists(path):
      found = [l for l in open(path).read().splitlines() if l.startswith('Against the logistic reference')]
      if found:
        reports.append(f'- **logistic reference**: {found[0]}')
  if variants:
    lines += ['**The variants beyond the specification** (docs/CHOICES.md), against pfmsmtrec and against the '
              'best federated baseline of the same report (variant minus baseline, with its paired 95% interval '
              'where the report gives one): ' + '; '.join(variants) + '.', '']
  lines += reports
  return lines + [''] if lines else []


def section() -> str:
  parts = ['Generated by `python benchmarks/render_readme.py` from `benchmarks/results/`; each block is a '
           'benchmark\'s own report, with the command that measured it. In short:', '', *headlines()]
  for name, producer in ORDER:
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
      continue
    text = open(path).read().strip()
    text = re.sub(r'^(#+) ', lambda m: '#' * (len(m.group(1)) + 2) + ' ', text, flags=re.M)
    parts += [text, '', f'_(`benchmarks/results/{name}`, from `{producer}`)_', '']
  return '\n'.join(parts)


def main() -> None:
  path = os.path.join(REPO, 'README.md')
  readme = open(path).read()
  if START not in readme or END not in readme:
    sys.exit(f'{path} lacks the {START} ... {END} markers')
  head, rest = readme.split(START, 1)
  _, tail = rest.split(END, 1)
  with open(path, 'w') as f:
    f.write(f'{head}{START}\n{section()}\n{END}{tail}')
  print(f'updated {path}')


if __name__ == '__main__':
  main()
