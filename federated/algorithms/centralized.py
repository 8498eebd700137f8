"""The pooled-rows reference: one Keras model trained on every scenario's rows in one place (not private)."""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='centralized', family='reference',
                      description='one model on the pooled rows of every scenario: a non-private reference',
                      template=uniform_template(T.GLOBAL), federated=False)
