"""Ditto (Li et al., 2021): FedAvg for a global model, and a personal model per client pulled towards it.

Each client trains the received global model (its update is what the server averages), then its personal
model, kept in its own storage, with (lambda/2)||v - w received||^2 (--reg_lambda); it evaluates and deploys
the personal model.
"""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='ditto', family='baseline',
                      description='fedavg plus a personal model per client, pulled to the global one (--reg_lambda)',
                      template=uniform_template(T.GLOBAL), personal_model=True, tuned=('reg_lambda',))
