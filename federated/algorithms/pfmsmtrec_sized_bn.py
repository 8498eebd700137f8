"""Variant: pfmsmtrec_sized whose BatchNorm variables are mixed with their layer's group, not kept local.

On Census by race the algorithms that keep BatchNorm local lose to those that share it, and the small
scenarios' local statistics come from a few hundred rows. Here each BatchNorm layer joins the personalized
group of the layer it sits in, so the size prior mixes it too (docs/CHOICES.md). Beyond the specification,
hence a variant with its own row (issue 14).
"""

import functools

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_sized_bn', family='variant',
    description='pfmsmtrec_sized with each BatchNorm layer in its layer\'s personalized group, mixed by the same '
                'size prior instead of local',
    template=functools.partial(pfmsmtrec.template_rules, federated_bn=False, personal_inputs=True,
                               personal_tasks=True),
    personalization='attention_counts', tower_personalization='attention_counts',
    loss_terms=(loss_terms.personalization_regularizer,), paper=False, tuned=('tau', 'reg_lambda'))
