"""Ablation: PF-MSMTrec with BatchNorm variables taking the role of the layer they sit in (no federated BN)."""

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_no_fedbn', family='ablation',
    description='pfmsmtrec without federated batch normalization: BatchNorm shared like its layer',
    template=lambda model, shared: pfmsmtrec.template_rules(model, shared, federated_bn=False),
    loss_terms=(loss_terms.personalization_regularizer,), tuned=('tau', 'reg_lambda'))
