"""What a run reports: an undefined AUC is missing with its reason, and the mean says which cells it leaves out."""

import math

from federated import reporting


def test_cell_marks_single_class_splits_as_missing():
  assert reporting.cell(0.7, 0.3, 5, 100) == {'auc': 0.7, 'logloss': 0.3, 'positives': 5, 'examples': 100}
  for positives, examples, reason in ((0, 100, 'no positive among 100 rows'), (100, 100, 'no negative among 100 rows'),
                                      (0, 0, 'no rows among 0 rows')):
    cell = reporting.cell(0.0, 0.1, positives, examples)  # a thresholded AUC reports 0 here, not NaN
    assert math.isnan(cell['auc']) and cell['missing'] == reason


def test_mean_and_table_leave_out_undefined_cells_and_say_so():
  test = {'a': {'t': reporting.cell(0.8, 0.2, 3, 50)}, 'b': {'t': reporting.cell(0.0, 0.2, 0, 40)}}
  assert reporting.mean_auc(test) == 0.8
  assert reporting.left_out(test) == ['b/t (no positive among 40 rows)']
  text = reporting.format_results({'algorithm': 'x', 'rounds': 1, 'test': test, 'mean_auc': 0.8})
  assert text.splitlines()[3].split() == ['b', 'n/a']
  assert text.endswith('the mean is over 1 of 2 cells; left out: b/t (no positive among 40 rows)')
