"""Variant: PF-MSMTrec whose attention measures similarity on each client's updates averaged over rounds.

The specification's cosine of one round's updates stops telling the scenarios apart after a few rounds (the
cosines fall to about 0 and the mix becomes a constant set by tau; docs/CHOICES.md). Here the experts and the
towers use the rule `attention_smoothed` (federated/personalization/attention_smoothed.py); everything else
is pfmsmtrec's. Beyond the specification, hence a variant with its own row (issue 14).
"""

from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

_BASE = pfmsmtrec.ALGORITHM

ALGORITHM = Algorithm(
    name='pfmsmtrec_smoothed_attention', family='variant',
    description='pfmsmtrec with attention on the clients\' updates averaged over rounds (--similarity_momentum)',
    template=_BASE.template, loss_terms=_BASE.loss_terms, conflict=_BASE.conflict,
    personalization='attention_smoothed', tower_personalization='attention_smoothed', paper=False,
    tuned=('tau', 'reg_lambda'))
