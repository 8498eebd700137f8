"""FedProx (Li et al., 2020): FedAvg with a proximal term that keeps local training near the global model."""

from federated import loss_terms
from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='fedprox', family='baseline',
                      description='fedavg with the proximal term (mu/2)||w - w received||^2 (--prox_mu)',
                      template=uniform_template(T.GLOBAL), loss_terms=(loss_terms.proximal,), tuned=('prox_mu',))
