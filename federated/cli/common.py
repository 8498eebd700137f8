"""What every subcommand shares: one clear error line instead of a traceback, and quiet TF logging."""

from __future__ import annotations

import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging

from federated import runtime

# Errors a user can fix; anything else is a bug and keeps its traceback.
# ComputationError: a TFF computation failed; its cause is the message, its gRPC dump is not the user's business.
USER_ERRORS = (ValueError, OSError, runtime.ComputationError)  # OSError: missing, unwritable or full paths


def run_app(main: Callable, argv, module, tensorflow: bool = True) -> None:
  """Runs `main` as an absl app; `module` (the subcommand's) owns the flags that --help lists. `tensorflow`:
  whether the subcommand needs it (importing it costs seconds and most of a small command's memory)."""
  if any(a in ('-h', '--help', '--helpshort') for a in argv[1:]):
    print(f'usage: {argv[0]} [--flags]\n\n{(module.__doc__ or "").strip()}\n')
    print(flags.FLAGS.module_help(module.__name__))
    print('\n(--flagfile=FILE reads flags from a file; --helpfull lists every flag, absl\'s own included)')
    sys.exit(0)
  # TensorFlow must be imported before absl's app.run: imported inside it, Keras optimizers later fail to
  # build ("Tensor.op is undefined when eager execution is enabled"; seen with TF 2.14 / absl 1.4).
  if tensorflow:
    from federated import startup  # pylint: disable=g-import-not-at-top
    tf = startup.import_tensorflow()  # without the CUDA registration lines a CPU machine prints
    tf.get_logger().setLevel('ERROR')  # Keras' own deprecation notices are not the user's business

  def guarded(args):
    if not any(a.startswith(('--verbosity', '-v=')) for a in argv):
      logging.set_verbosity(logging.WARNING)  # TFF logs every checkpoint at INFO; the progress lines suffice
    if len(args) > 1:
      raise app.UsageError(f'unexpected arguments {args[1:]} (flags are --name=value)')
    try:
      main()
    except USER_ERRORS as e:
      print(f'error: {e}', file=sys.stderr)
      print(f'hint: {args[0]} --help lists every flag', file=sys.stderr)
      sys.exit(2)

  app.run(guarded, argv=argv)
