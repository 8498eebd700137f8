"""Ablation: PF-MSMTrec with the task towers local (not aggregated at all)."""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_no_tower_agg', family='ablation',
    description='pfmsmtrec with local task towers (no personalized tower aggregation)',
    template=lambda model, shared: pfmsmtrec.template_rules(model, shared, tower_aggregation=False),
    loss_terms=(loss_terms.personalization_regularizer,), tuned=('tau', 'reg_lambda'))
