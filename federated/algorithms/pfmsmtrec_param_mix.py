"""Variant: PF-MSMTrec whose personalized groups (experts, towers) mix the clients' parameters, not updates.

ALGORITHM.md adds to each client's personalized parameters its attention mix of the clients' updates, so
the clients' copies drift apart and never come back (rule `attention_on_parameters` says why that may
matter). Here each client's copy becomes the same attention mix of every client's updated copy, which also
pulls it towards its peers. Same template, conflict step, regularizer and weights as pfmsmtrec; beyond the
specification, hence a variant with its own row (issue 14, docs/CHOICES.md).
"""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

RULE = 'attention_on_parameters'

ALGORITHM = Algorithm(
    name='pfmsmtrec_param_mix', family='variant',
    description='pfmsmtrec with the attention mix taken of the clients\' parameters, not of their updates',
    template=pfmsmtrec.template_rules, loss_terms=(loss_terms.personalization_regularizer,),
    personalization=RULE, tower_personalization=RULE, paper=False, tuned=('tau', 'reg_lambda'))
