"""FedAvg (McMahan et al., 2017): one global model, the example-weighted mean of the client updates."""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='fedavg', family='baseline', description='one global model, example-weighted mean updates',
                      template=uniform_template(T.GLOBAL))
