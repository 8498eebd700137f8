"""Ablation: PF-MSMTrec without the client's personalization regularizer."""

from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_no_reg', family='ablation',
    description='pfmsmtrec without the personalization regularizer (lambda = 0)',
    template=pfmsmtrec.template_rules, tuned=('tau',))
