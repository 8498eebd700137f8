"""Local training: every parameter stays on its client; nothing is exchanged."""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='local', family='baseline', description='each scenario trains its own model alone',
                      template=uniform_template(T.LOCAL))
