"""The one error type for bad input: it always says where (file, row, column) and what was expected."""

from __future__ import annotations

from typing import Any, Optional


class InputError(ValueError):
  """Bad input data. Raised instead of guessing, so no row is silently lost or invented."""

  def __init__(
      self,
      message: str,
      *,
      path: Optional[str] = None,
      row: Optional[int] = None,
      column: Optional[str] = None,
      value: Any = None,
      expected: Optional[str] = None,
      hint: Optional[str] = None,
  ):
    self.path, self.row, self.column, self.value = path, row, column, value
    self.expected, self.hint = expected, hint
    where = []
    if path is not None:
      where.append(f'file {path}')
    if row is not None:
      where.append(f'row {row}')
    if column is not None:
      where.append(f'column {column!r}')
    text = (', '.join(where) + ': ' if where else '') + message
    if value is not None:
      shown = repr(value)
      text += f' (got {shown[:80] + "..." if len(shown) > 80 else shown})'
    if expected:
      text += f'; expected {expected}'
    if hint:
      text += f'. Hint: {hint}'
    super().__init__(text)
