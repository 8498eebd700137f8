"""Variant: PF-MSMTrec whose attention personalization has a learned strength per scenario (issue 14).

The experts and the towers are personalized by `hyper_attention`: each scenario receives its update plus
hyper_k times (its attention mix less its update), hyper_k starting at 1 (--hyper_init: the specification's
attention) and learned from the scenario's next update (--hyper_lr). Beyond ALGORITHM.md, where every
scenario takes its full attention mix, hence a variant with its own row.
"""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_adaptive', family='variant',
    description='pfmsmtrec whose attention mix each scenario takes with a strength learned from its next update',
    template=pfmsmtrec.template_rules, loss_terms=(loss_terms.personalization_regularizer,),
    personalization='hyper_attention', paper=False, tuned=('tau', 'reg_lambda', 'hyper_lr'))
