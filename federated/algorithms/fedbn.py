"""FedBN (Li et al., 2021): FedAvg with every BatchNorm variable local."""

from federated.algorithm import Algorithm
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(
    name='fedbn', family='baseline', description='fedavg with local BatchNorm layers',
    template=lambda model, shared: T.Template('', (*T.batch_norm_rules(model), T.all_rule(T.GLOBAL))))
