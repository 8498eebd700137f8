"""Variant: PF-MSMTrec whose input embeddings are a personalized group, not global.

ALGORITHM.md makes the input layer global when the scenarios share one encoding. Here each scenario
instead receives its own attention mix of every scenario's embeddings (group `inputs`, the rule of
--personalization), so that a value may mean different things in different scenarios. Beyond the
specification, hence a variant with its own row (issue 14); with per-scenario encodings it equals pfmsmtrec.
"""

import functools

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_personal_inputs', family='variant',
    description='pfmsmtrec with the input embeddings a personalized group (attention mix per scenario)',
    template=functools.partial(pfmsmtrec.template_rules, personal_inputs=True),
    loss_terms=(loss_terms.personalization_regularizer,), paper=False, tuned=('tau', 'reg_lambda'))
