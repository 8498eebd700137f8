"""Ablation: PF-MSMTrec with every client receiving the example-weighted mean of the personalized updates."""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_no_personalization', family='ablation',
    description='pfmsmtrec with the mean instead of attention-personalized aggregation (--personalization=mean)',
    template=pfmsmtrec.template_rules, loss_terms=(loss_terms.personalization_regularizer,),
    personalization='mean', tuned=('reg_lambda',))
