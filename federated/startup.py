"""Process start-up: TensorFlow imported without the noise its C++ runtime prints on a machine without a GPU.

TF 2.14 prints "Unable to register cuDNN/cuFFT/cuBLAS factory" at ERROR level on every import, GPU or not
(its CUDA plugins register twice); they look like failures and are not. TensorFlow's own log level cannot
drop them without dropping real errors, so the import runs with the process's standard error (file
descriptor 2, where C++ writes) sent to a temporary file, and every line but those known ones is written
back. Entry points call `import_tensorflow()` before anything else imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

DEFAULT_LOG_LEVEL = '2'  # TF_CPP_MIN_LOG_LEVEL unless the user set one: C++ warnings and info lines off
_NOISE = re.compile(r'Unable to register (cuDNN|cuFFT|cuBLAS) factory|Could not find cuda drivers|'
                    r'TF-TRT Warning: Could not find TensorRT')


def import_tensorflow():
  """`import tensorflow`, with the known start-up noise filtered out of standard error; returns the module."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', DEFAULT_LOG_LEVEL)
  if 'tensorflow' in sys.modules:
    return sys.modules['tensorflow']
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().decode(errors='replace').splitlines() if not _NOISE.search(line)]
      if kept:
        sys.stderr.write('\n'.join(kept) + '\n')
  return tensorflow
