"""Variant: pfmsmtrec_personal_inputs whose task parts are personalized too, every mix sized by rows.

Each dataset's loss has its own cause (docs/CHOICES.md): on the synthetic default the global input layer, on
Census by race the small scenarios, whose local task parts and self-heavy mixes see a few hundred rows. Here
the embeddings are a personalized group, each task's expert(s), gate and tower one personalized group, and
every group is mixed by attention with a size prior (`attention_counts`): a scenario borrows from the others
in proportion to their rows. Beyond the specification, hence a variant with its own row (issue 14).
"""

import functools

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_sized', family='variant',
    description='pfmsmtrec_personal_inputs with each task\'s experts, gate and tower personalized and every mix '
                'attention with a size prior, softmax(cos / tau + log n_j)',
    template=functools.partial(pfmsmtrec.template_rules, personal_inputs=True, personal_tasks=True),
    personalization='attention_counts', tower_personalization='attention_counts',
    loss_terms=(loss_terms.personalization_regularizer,), paper=False, tuned=('tau', 'reg_lambda'))
