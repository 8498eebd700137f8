"""Ablation: PF-MSMTrec without conflict coordination of the experts' updates."""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_no_conflict', family='ablation',
    description='pfmsmtrec without conflict coordination (--conflict=none)',
    template=pfmsmtrec.template_rules, loss_terms=(loss_terms.personalization_regularizer,), conflict='none',
    tuned=('tau', 'reg_lambda'))
