"""The non-neural reference: per-scenario logistic regression on the encoded features, trained locally.

Each scenario fits its own logistic regression (pfmsmt_tf/linear.py) on its own rows, through the same
rounds, selection on valid and test as every algorithm; nothing is exchanged. `pfmsmt compare` adds it to
every comparison (--logistic_reference), so a report shows whether the neural models beat it.
"""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import linear
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(
    name='logistic', family='reference',
    description='per-scenario logistic regression on the encoded features (local, not neural): the floor to beat',
    template=uniform_template(T.LOCAL), model=linear.build_logistic, paper=False)
