"""PF-MSMTrec (ALGORITHM.md): global shared parts, personalized scenario experts and towers, local rest.

Template: BatchNorm local (federated BN); the input layer global when the scenarios share their encoding,
else local; the global experts global; the scenario experts personalized (group `experts`); task experts
and gates local; each task tower personalized (group `tower/<task>`). The server coordinates the experts'
updates (--conflict, PCGrad by default) and personalizes each group by attention (--personalization); the
client adds the personalization regularizer. The ablations reuse `template_rules` with a part switched off.
"""

from __future__ import annotations

from federated import loss_terms
from federated.algorithm import Algorithm
from pfmsmt_tf import template as T

INPUTS_GROUP = 'inputs'


def template_rules(model, shared_inputs: bool, federated_bn: bool = True, tower_aggregation: bool = True,
                   personal_inputs: bool = False, personal_tasks: bool = False) -> T.Template:
  """The default template; the flags are the variants' and ablations' departures from it. `personal_tasks`
  makes each task's expert(s), gate and tower one personalized group (the tower's) instead of local parts
  beside a personalized tower."""
  if personal_tasks and not tower_aggregation:
    raise ValueError('personal_tasks personalizes the towers with the task parts; it needs tower_aggregation')
  g = model.layer_groups()
  rules = list(T.batch_norm_rules(model)) if federated_bn else []
  if shared_inputs and personal_inputs:  # one encoding, a personalized mix of its embeddings per scenario
    rules.append(T.Rule(T.PERSONALIZED, T.layer_globs([g['input']]), group=INPUTS_GROUP))
  else:
    rules.append(T.Rule(T.GLOBAL if shared_inputs else T.LOCAL, T.layer_globs([g['input']])))
  if g['global_experts']:
    rules.append(T.Rule(T.GLOBAL, T.layer_globs(g['global_experts'])))
  if g['scenario_experts']:
    rules.append(T.Rule(T.PERSONALIZED, T.layer_globs(g['scenario_experts']), group=T.EXPERTS_GROUP))
  towers = g['towers']
  if personal_tasks:
    for task, tower in towers.items():
      layers = list(g['task_experts'].get(task, ())) + ([g['gates'][task]] if task in g['gates'] else []) + [tower]
      rules.append(T.Rule(T.PERSONALIZED, T.layer_globs(layers), group=T.tower_group(task)))
    return T.Template('', tuple(rules))
  task_layers = [n for layer_names in g['task_experts'].values() for n in layer_names] + list(g['gates'].values())
  if task_layers:
    rules.append(T.Rule(T.LOCAL, T.layer_globs(task_layers)))
  if tower_aggregation:
    rules += [T.Rule(T.PERSONALIZED, T.layer_globs([name]), group=T.tower_group(task)) for task, name in towers.items()]
  else:
    rules.append(T.Rule(T.LOCAL, T.layer_globs(list(towers.values()))))
  return T.Template('', tuple(rules))


ALGORITHM = Algorithm(
    name='pfmsmtrec', family='pfmsmtrec',
    description='PF-MSMTrec: federated BN, conflict-coordinated and attention-personalized experts and towers',
    template=template_rules, loss_terms=(loss_terms.personalization_regularizer,), tuned=('tau', 'reg_lambda'))
