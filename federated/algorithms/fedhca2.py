"""FedHCA2 (Lu et al., 2024; the same group's predecessor of PF-MSMTrec): the shared body (their encoder:
input layer and every expert) personalized by hyper conflict-averse aggregation, each task's tower and gate
(their decoders) by hyper cross-attention aggregation; each client's hyper-weight per group (alpha for the
body, beta for each head) is learned from its next round's update (federated/personalization/hyper_ca.py,
hyper_cross.py; --hyper_lr, --hyper_init, --cagrad_c). BatchNorm stays local, as in the other personalized
methods here (FedHCA2's backbone has none).
"""

from federated.algorithm import Algorithm
from pfmsmt_tf import template as T

BODY = 'encoder'


def template(model, shared_inputs):
  del shared_inputs  # the body is personalized either way
  g = model.layer_groups()
  rules = list(T.batch_norm_rules(model))
  for task, tower in g['towers'].items():
    heads = [tower] + ([g['gates'][task]] if task in g['gates'] else [])
    rules.append(T.Rule(T.PERSONALIZED, T.layer_globs(heads), group=T.tower_group(task)))
  rules.append(T.Rule(T.PERSONALIZED, '*', group=BODY))
  return T.Template('', tuple(rules))


ALGORITHM = Algorithm(name='fedhca2', family='baseline',
                      description='hyper conflict-averse aggregation of the body, hyper cross-attention of the heads, '
                      'per-client hyper-weights learned from the next update',
                      template=template, conflict='none', personalization='hyper_ca',
                      tower_personalization='hyper_cross', paper=False, tuned=('hyper_lr',))
