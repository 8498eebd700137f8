"""notebooks/quickstart.ipynb runs headless, top to bottom, with small settings."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

NOTEBOOK = os.path.join(REPO, 'notebooks', 'quickstart.ipynb')

RUNNER = '''
import json, sys
cells = json.load(open(sys.argv[1]))['cells']
namespace = {'__name__': '__main__'}
for i, cell in enumerate(cells):
    if cell['cell_type'] == 'code':
        exec(compile(''.join(cell['source']), f'cell {i}', 'exec'), namespace)
'''


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
  nb = json.load(open(NOTEBOOK))
  assert nb['nbformat'] == 4 and 'install' in nb['cells'][1]['metadata']['tags']
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3', PFMSMT_NOTEBOOK_ROWS='600',
             PFMSMT_NOTEBOOK_ROUNDS='1', PFMSMT_NOTEBOOK_SEEDS='1', PFMSMT_NOTEBOOK_WORKDIR=str(tmp_path))
  r = subprocess.run([sys.executable, '-c', RUNNER, NOTEBOOK], cwd=os.path.dirname(NOTEBOOK), env=env,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert '| pfmsmtrec |' in r.stdout and '| fedavg |' in r.stdout
  assert "{'ctcvr': [" in r.stdout or "{'ctr': [" in r.stdout
  assert os.path.exists(tmp_path / 'export' / 'NL' / '1' / 'saved_model.pb')
  assert os.path.exists(tmp_path / 'compare' / 'auc_by_round.png')
