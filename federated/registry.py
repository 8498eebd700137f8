"""Parts found by name: every public module of a package is one part, so adding a part is adding a module.

The algorithm, conflict-method and personalization-rule packages are registries of this kind. Names come from
the package's file listing without importing anything, so configuration can offer them as flag choices
before TensorFlow is loaded; a part's module is imported when it is asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Tuple


class ModuleRegistry:
  """The modules of one package; `attribute` names what each module must define (its part)."""

  def __init__(self, package: str, path, kind: str, attribute: str):
    self._package, self._path, self._kind, self._attribute = package, list(path), kind, attribute

  def names(self) -> Tuple[str, ...]:
    """Every part's name, sorted; modules whose name starts with '_' are the package's own helpers."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(self._path) if not m.name.startswith('_')))

  def module(self, name: str):
    if name not in self.names():
      raise ValueError(f'unknown {self._kind} {name!r}; choose one of {", ".join(self.names())}')
    return importlib.import_module(f'{self._package}.{name}')

  def get(self, name: str) -> Any:
    module = self.module(name)
    if not hasattr(module, self._attribute):
      raise TypeError(f'{self._package}.{name} defines no {self._attribute}: every {self._kind} module must')
    return getattr(module, self._attribute)
