"""The packages depend one way: federated -> pfmsmt_tf -> data_pipelines, and no module-level import cycle.

Read from the source (every `import` statement, module level or inside a function), so it stays true as the
code changes without importing anything.
"""

import ast
import os

import pytest

from tests.conftest import REPO

PACKAGES = ('data_pipelines', 'pfmsmt_tf', 'federated')
# What each package may import of the others (and of TFF): everything below it, nothing above.
MAY_IMPORT = {
    'data_pipelines': set(),
    'pfmsmt_tf': {'data_pipelines'},
    'federated': {'data_pipelines', 'pfmsmt_tf', 'tensorflow_federated'},
}
# Inside federated: the entry points (command line, Python API, experiments) sit above the library.
ENTRY_POINTS = ('federated.cli', 'federated.api', 'federated.experiment')


def _is_entry_point(module: str) -> bool:
  return any(module == e or module.startswith(e + '.') for e in ENTRY_POINTS)


def _modules():
  for package in PACKAGES:
    for folder, _, files in os.walk(os.path.join(REPO, package)):
      for name in files:
        if name.endswith('.py'):
          path = os.path.join(folder, name)
          module = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
          yield module.removesuffix('.__init__'), path


def _imports(path, top_level_only=False):
  """(imported module, line) of every import in the file; `top_level_only`: not inside functions."""
  tree = ast.parse(open(path).read(), path)
  nodes = tree.body if top_level_only else ast.walk(tree)
  out = []
  for node in nodes:
    if isinstance(node, ast.Import):
      out += [(a.name, node.lineno) for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      out.append((node.module, node.lineno))
      out += [(f'{node.module}.{a.name}', node.lineno) for a in node.names]  # `from pkg import module`
  return out


MODULES = dict(_modules())


def test_packages_import_only_the_layers_below():
  wrong = []
  for module, path in MODULES.items():
    package = module.split('.')[0]
    for imported, line in _imports(path):
      other = imported.split('.')[0]
      if other in PACKAGES + ('tensorflow_federated',) and other != package and other not in MAY_IMPORT[package]:
        wrong.append(f'{os.path.relpath(path, REPO)}:{line} imports {imported}')
  assert not wrong, 'imports against the layering:\n' + '\n'.join(wrong)


def test_the_library_does_not_import_its_entry_points():
  wrong = []
  for module, path in MODULES.items():
    if _is_entry_point(module):
      continue
    for imported, line in _imports(path):
      if _is_entry_point(imported):
        wrong.append(f'{os.path.relpath(path, REPO)}:{line} imports {imported}')
  assert not wrong, '\n'.join(wrong)


def test_no_module_level_import_cycle():
  graph = {m: {i for i, _ in _imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
  # Importing a.b.c also imports the packages a and a.b.
  for m in list(graph):
    graph[m] |= {'.'.join(i.split('.')[:k]) for i in graph[m] for k in range(1, i.count('.') + 1)} & set(MODULES)
    graph[m].discard(m)
  state, stack = {}, []

  def visit(m):
    state[m] = 'open'
    stack.append(m)
    for n in sorted(graph[m]):
      if state.get(n) == 'open':
        pytest.fail('import cycle: ' + ' -> '.join(stack[stack.index(n):] + [n]))
      if n not in state:
        visit(n)
    stack.pop()
    state[m] = 'done'

  for m in sorted(graph):
    if m not in state:
      visit(m)


def test_the_checks_see_a_violation(tmp_path):
  """The parser finds imports inside functions too (a check that reads nothing would pass anything)."""
  source = tmp_path / 'x.py'
  source.write_text('import os\n\ndef f():\n  from federated import training\n')
  assert ('federated.training', 4) in _imports(str(source))
  assert ('federated.training', 4) not in _imports(str(source), top_level_only=True)
  assert len(MODULES) > 50 and 'federated.algorithms.pfmsmtrec' in MODULES
