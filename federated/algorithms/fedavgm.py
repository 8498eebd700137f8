"""FedAvgM (Hsu et al., 2019): FedAvg whose server applies the mean update with momentum.

The server treats the negated example-weighted mean update as a gradient for SGD with momentum (TFF's
`build_sgdm`); with momentum 0 it is FedAvg. The defaults are the paper's usual setting, server learning
rate 1 and momentum 0.9; they are fixed here, untuned, like every other baseline's.
"""

import tensorflow_federated as tff

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

SERVER_LEARNING_RATE = 1.0
SERVER_MOMENTUM = 0.9


def server_optimizer(aggregation_cfg):
  del aggregation_cfg
  return tff.learning.optimizers.build_sgdm(learning_rate=SERVER_LEARNING_RATE, momentum=SERVER_MOMENTUM)


ALGORITHM = Algorithm(name='fedavgm', family='baseline',
                      description='fedavg with server momentum (SGD, learning rate 1, momentum 0.9)',
                      template=uniform_template(T.GLOBAL), server_optimizer=server_optimizer, paper=False)
