"""The README's results open with a verdict per dataset that says plainly when pfmsmtrec does not win."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import render_readme  # noqa: E402  pylint: disable=g-import-not-at-top

HEADER = 'algorithm,reference,seeds,diff_mean,ci_low,ci_high,excludes_zero\n'


def _paired(tmp_path, rows):
  path = tmp_path / 'quality_x_paired.csv'
  path.write_text(HEADER + ''.join(f'{a},pfmsmtrec,5,{d},{lo},{hi},x\n' for a, d, lo, hi in rows))
  return str(path)


def test_a_competitor_ahead_is_named_and_references_and_variants_are_not_competitors(tmp_path):
  path = _paired(tmp_path, [('ditto', 0.02, 0.01, 0.03), ('fedavg', -0.02, -0.03, -0.01),
                            ('centralized', 0.05, 0.04, 0.06), ('pfmsmtrec_personal_inputs', 0.03, 0.02, 0.04)])
  assert render_readme.verdict(path) == 'no: behind ditto (+0.0200 [+0.0100, +0.0300])'


def test_ahead_of_every_competitor_says_so_with_the_closest(tmp_path):
  path = _paired(tmp_path, [('ditto', -0.002, -0.003, -0.001), ('fedavg', -0.02, -0.03, -0.01),
                            ('logistic', 0.05, 0.04, 0.06)])
  assert render_readme.verdict(path) == ('yes: ahead of all 2 competitors, the closest '
                                         'ditto (-0.0020 [-0.0030, -0.0010])')


def test_an_interval_across_zero_is_a_tie_not_a_win(tmp_path):
  path = _paired(tmp_path, [('ditto', 0.001, -0.001, 0.003), ('fedavg', -0.02, -0.03, -0.01)])
  assert render_readme.verdict(path) == ('not shown: behind none, ahead of 1 of 2, tied with '
                                         'ditto (+0.0010 [-0.0010, +0.0030])')


def test_each_reports_variant_lines_are_gathered_under_their_report(tmp_path, monkeypatch):
  (tmp_path / 'quality_a.md').write_text('# a\n\nTargets:\n\n- variant v: 0.8000, +0.0200 against pfmsmtrec, '
                                         '+0.0015 [+0.0003, +0.0027] against the best federated baseline (ditto)\n')
  (tmp_path / 'quality_b.md').write_text('# b\n\nno variant here\n')
  monkeypatch.setattr(render_readme, 'RESULTS', str(tmp_path))
  monkeypatch.setattr(render_readme, 'ORDER', [('quality_a.md', 'x'), ('quality_b.md', 'y'), ('quality_c.md', 'z')])
  [line] = [l for l in render_readme.headlines() if l.startswith('**The variants')]
  assert line.endswith(': a: v: 0.8000, +0.0200 against pfmsmtrec, +0.0015 [+0.0003, +0.0027] against the best '
                       'federated baseline (ditto).')
