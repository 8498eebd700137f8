"""FedAMP (Huang et al., 2021): every parameter personalized; the server gives each client an attentive
combination of all clients' parameters, weighted by their similarity (federated/personalization/fedamp.py,
--fedamp_alpha, --fedamp_sigma), and the client trains its model pulled towards what it received
((lambda/2)||w - u_k||^2, --reg_lambda). Updates are mixed as they are, without conflict coordination.
"""

from federated import loss_terms
from federated.algorithm import Algorithm
from pfmsmt_tf import template as T

GROUP = 'model'


def template(model, shared_inputs):
  del model, shared_inputs
  return T.Template('', (T.Rule(T.PERSONALIZED, '*', group=GROUP),))


ALGORITHM = Algorithm(name='fedamp', family='baseline',
                      description='every parameter personalized: similarity-weighted combinations of all clients\' '
                      'parameters (--fedamp_alpha, --fedamp_sigma)',
                      template=template, loss_terms=(loss_terms.personalization_regularizer,), conflict='none',
                      personalization='fedamp', paper=False, tuned=('fedamp_alpha', 'fedamp_sigma', 'reg_lambda'))
