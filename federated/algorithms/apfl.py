"""APFL (Deng et al., 2020): FedAvg for a global model w, and per client a personal model v that it deploys
mixed with w, alpha v + (1 - alpha) w, alpha learned by each client so that it leans on the others as much
as its rows call for.

Each client trains the received global model (its update is what the server averages), then v through the
mix with its locally trained w (dv = alpha g, dalpha = <v - w, g>: APFL's gradients); v and alpha stay in
its storage; it evaluates and deploys the mix with the received global model. The paper interleaves the w
and v steps batch by batch; here the w epochs come first, as Ditto's do.
"""

from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import template as T

ALGORITHM = Algorithm(name='apfl', family='baseline',
                      description='fedavg plus a personal model per client, deployed mixed with the global one by '
                      'a learned alpha (--apfl_alpha its start)',
                      template=uniform_template(T.GLOBAL), personal_model=True, personal_mixing=True, paper=False,
                      tuned=('apfl_alpha',))
