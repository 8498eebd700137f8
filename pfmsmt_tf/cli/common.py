"""What every subcommand shares: one clear error line instead of a traceback, and quiet TF logging."""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app

# Errors a user can fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError)


def run_app(main: Callable, argv) -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

  def guarded(args):
    if len(args) > 1:
      raise app.UsageError(f'unexpected arguments {args[1:]} (flags are --name=value)')
    try:
      main()
    except USER_ERRORS as e:
      print(f'error: {e}', file=sys.stderr)
      print(f'hint: {args[0]} --help lists every flag', file=sys.stderr)
      sys.exit(2)

  app.run(guarded, argv=argv)
