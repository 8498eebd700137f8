"""No coordination: the updates as they came (the no_conflict ablation, and the towers by default)."""

from __future__ import annotations

import collections

DESCRIPTION = 'the updates unchanged'


def coordinate(updates, seed, cfg=None):
  del seed, cfg
  return updates, collections.OrderedDict()
