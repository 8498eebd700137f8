"""FedRep (Collins et al., 2021): a shared representation averaged by the server, and local heads that each
client fits first, on the current representation, before it updates the representation with its head fixed.

Here the heads are the task towers and gates (kept local, as in FedPer), the representation the rest; each
phase is --local_epochs over the client's rows.
"""

from federated.algorithm import Algorithm
from federated.algorithms import fedper

ALGORITHM = Algorithm(name='fedrep', family='baseline',
                      description='fedper\'s split, trained in two phases: local heads first, then the shared body',
                      template=fedper.template, client_phases=('local', 'shared'), paper=False)
