"""Variant: pfmsmtrec_personal_inputs, plus a Ditto personal model per scenario pulled towards what it received.

The shared model trains and aggregates as in `pfmsmtrec_personal_inputs` (its updates are all the server
sees). Each scenario also keeps a whole personal model at home, trained after the shared one with
(lambda/2)||v - received||^2 (--reg_lambda), where `received` is its PF-MSMTrec model of the round: global
values, its attention mix of each personalized group and its own local parameters. It evaluates and deploys
the personal model. Why: on the synthetic datasets Ditto, whose anchor is a FedAvg model, beats every
PF-MSMTrec; here the anchor is the personalized model instead (docs/CHOICES.md). Beyond the specification,
so a variant; it costs a second local training per round.
"""

import functools

from federated import loss_terms
from federated.algorithm import Algorithm
from federated.algorithms import pfmsmtrec

ALGORITHM = Algorithm(
    name='pfmsmtrec_ditto', family='variant',
    description='pfmsmtrec_personal_inputs plus a personal model per scenario pulled to its received model',
    template=functools.partial(pfmsmtrec.template_rules, personal_inputs=True),
    loss_terms=(loss_terms.personalization_regularizer,), personal_model=True, paper=False,
    tuned=('tau', 'reg_lambda'))
