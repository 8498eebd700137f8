"""Variant: pfmsmtrec_personal_inputs whose task-specific parts are personalized per task, not local.

In the template each task's expert(s) and gate are local beside a personalized tower, so the parts of the task
with few positives (CTCVR, Census income), where PF-MSMTrec loses most, are the ones shared least
(docs/CHOICES.md). Here each task's expert(s), gate and tower are one personalized group, mixed by the towers'
rule. Beyond the specification, hence a variant with its own row (issue 14).
"""

import functools

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_personal_tasks', family='variant',
    description='pfmsmtrec_personal_inputs with each task\'s experts, gate and tower one personalized group',
    template=functools.partial(pfmsmtrec.template_rules, personal_inputs=True, personal_tasks=True),
    loss_terms=(loss_terms.personalization_regularizer,), paper=False, tuned=('tau', 'reg_lambda'))
