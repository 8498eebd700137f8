"""FedPer (Arivazhagan et al., 2019): a global body with local personalization layers (towers and gates)."""

from federated.algorithm import Algorithm
from pfmsmt_tf import template as T


def template(model, shared_inputs):
  del shared_inputs
  g = model.layer_groups()
  personal_layers = list(g['towers'].values()) + list(g['gates'].values())
  return T.Template('', (T.Rule(T.LOCAL, T.layer_globs(personal_layers)), T.all_rule(T.GLOBAL)))


ALGORITHM = Algorithm(name='fedper', family='baseline', description='global body, local towers and gates',
                      template=template)
