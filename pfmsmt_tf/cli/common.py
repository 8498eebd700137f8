"""What every subcommand shares: one clear error line instead of a traceback, and quiet TF logging."""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app
from absl import flags

# Errors a user can fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError)  # OSError: missing, unwritable or full paths


def run_app(main: Callable, argv, module) -> None:
  """Runs `main` as an absl app; `module` (the subcommand's) owns the flags that --help lists."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if any(a in ('-h', '--help', '--helpshort') for a in argv[1:]):
    print(f'usage: {argv[0]} [--flags]\n\n{(module.__doc__ or "").strip()}\n')
    print(flags.FLAGS.module_help(module.__name__))
    print('\n(--flagfile=FILE reads flags from a file; --helpfull lists every flag, absl\'s own included)')
    sys.exit(0)
  # TensorFlow must be imported before absl's app.run: imported inside it, Keras optimizers later fail to
  # build ("Tensor.op is undefined when eager execution is enabled"; seen with TF 2.14 / absl 1.4).
  import tensorflow  # pylint: disable=g-import-not-at-top,unused-import

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
