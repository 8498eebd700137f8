"""Typed configuration of the federated process; the CLI exposes each field as a flag."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from data_pipelines.flagconfig import field as _field
from pfmsmt_tf import config as model_config

# Most computations an executor runs at once: a silo's default and the local runtime's bound, each executor
# getting inter-op threads to match (federated/runtime.py says why).
MAX_CONCURRENT_CALLS = 8


# The choices come from the registries (one module per part); each is read from a package's file listing, so
# this module imports none of them and they may import it.
LOGISTIC = 'logistic'  # the non-neural reference (federated/algorithms/logistic.py)


def algorithm_names():
  from federated import algorithms  # pylint: disable=g-import-not-at-top
  return algorithms.names()


def conflict_methods():
  from federated import conflicts  # pylint: disable=g-import-not-at-top
  return conflicts.names()


def personalization_rules():
  from federated import personalization  # pylint: disable=g-import-not-at-top
  return personalization.names()


@dataclasses.dataclass(frozen=True)
class AggregationConfig:
  """Server-side aggregation of the personalized groups (ALGORITHM.md, round step 3)."""

  conflict: str = _field('pcgrad', 'Conflict coordination of the scenario experts\' updates.', enum=conflict_methods)
  tower_conflict: str = _field('none', 'Conflict coordination of the towers\' updates.', enum=conflict_methods)
  personalization: str = _field('attention', 'attention: softmax(cos / tau) over clients; mean: example-weighted '
                                'mean (the no_personalization ablation).', enum=personalization_rules)
  tower_personalization: str = _field('', 'The towers\' own personalization rule (default: --personalization).',
                                      enum=lambda: ('',) + personalization_rules())
  tau: float = _field(0.5, 'Attention temperature: -> 0 is local training, -> infinity the plain mean.')
  fedamp_alpha: float = _field(50.0, 'fedamp: the weight scale alpha of the other clients\' parameters.')
  fedamp_sigma: float = _field(100.0, 'fedamp: the distance scale sigma of exp(-||w_k - w_j||^2 / sigma) / sigma. '
                               'The defaults suit the default model, whose clients\' parameters drift apart by '
                               'squared distances of order 100 (updates of norm 3-11 a round): at d^2 = 100 '
                               'another client weighs 0.18.')
  hyper_lr: float = _field(0.01, 'Rules with per-client hyper-weights (fedhca2): their learning rate on <what was '
                           'added to a client last round, its next update>.')
  hyper_init: float = _field(1.0, 'Rules with per-client hyper-weights: their starting value, in [0, 1].')
  cagrad_c: float = _field(0.4, 'CAGrad conflict-aversion coefficient c.')
  cagrad_alpha: float = _field(1.0, 'How far CAGrad moves each update towards the common direction, in [0, 1].')
  cagrad_steps: int = _field(2000, 'Most iterations of the CAGrad simplex solve (projected gradient with '
                             'backtracking; it stops earlier once converged).')
  dp_noise_multiplier: float = _field(0.0, 'Scenario-level differential privacy of the global updates: noise '
                                      'standard deviation / clip (0: off). See federated/privacy.py.')
  dp_clip: float = _field(1.0, 'L2 clip of each client\'s global update when DP is on.')
  dp_delta: float = _field(1e-5, 'The delta at which the spent epsilon is reported.')
  strict: bool = _field(False, 'Stop the run when a client update holds NaN or Inf (default: reject that '
                        'update with a warning and aggregate the others).')

  def __post_init__(self):
    if self.conflict not in conflict_methods() or self.tower_conflict not in conflict_methods():
      raise ValueError(f'conflict methods must be among {conflict_methods()}')
    if self.personalization not in personalization_rules() or self.tower_personalization not in (
        ('',) + personalization_rules()):
      raise ValueError(f'personalization and tower_personalization must be among {personalization_rules()}')
    if self.hyper_lr < 0 or not 0 <= self.hyper_init <= 1:
      raise ValueError(f'hyper_lr must be >= 0 and hyper_init in [0, 1], got {self.hyper_lr}, {self.hyper_init}')
    if self.tau <= 0:
      raise ValueError(f'tau must be positive, got {self.tau}')
    if self.fedamp_alpha < 0 or self.fedamp_sigma <= 0:
      raise ValueError(f'fedamp_alpha must be >= 0 and fedamp_sigma > 0, got {self.fedamp_alpha}, '
                       f'{self.fedamp_sigma}')
    if self.dp_noise_multiplier < 0 or self.dp_clip <= 0 or not 0 < self.dp_delta < 1:
      raise ValueError('dp_noise_multiplier must be >= 0, dp_clip > 0 and dp_delta in (0, 1)')
    if not 0 <= self.cagrad_alpha <= 1:
      raise ValueError(f'cagrad_alpha must be in [0, 1], got {self.cagrad_alpha}')


@dataclasses.dataclass(frozen=True)
class ClientConfig:
  """Local training on each client (ALGORITHM.md, round step 2)."""

  local_epochs: int = _field(1, 'Epochs over the client\'s train split per round (E).')
  batch_size: int = _field(256, 'Examples per local step.')
  learning_rate: float = _field(1e-3, 'Client Adam learning rate.')
  embedding_lr_scale: float = _field(1.0, 'The embedding tables of features with many train rows per value '
                                     'step this many times the learning rate (10 on every table cost AUC on the '
                                     'dense synthetic default: benchmarks/results/defaults.md).')
  sparse_embedding_lr_scale: float = _field(
      1.0, 'The tables of sparse features (fewer than 20 train rows per kept value, as prepare records and '
      'prints them) step this many times the learning rate: a sparse id\'s row sees few examples per round. '
      '10 helped the logistic reference on sparse ids (+0.06 AUC) but not the neural models '
      '(benchmarks/results/defaults.md).')
  reg_lambda: float = _field(0.01, 'Personalization regularizer (lambda/2)||theta_P - theta_P received||^2; '
                             'for ditto the pull of the personal model to the global one.')
  apfl_alpha: float = _field(0.5, 'apfl: each client\'s starting mix alpha of its personal model in what it '
                             'deploys (alpha v + (1 - alpha) w); each client then learns its own.')
  prox_mu: float = _field(0.01, 'fedprox: proximal term (mu/2)||w - w received||^2.')
  task_pcgrad: bool = _field(False, 'PCGrad between the task gradients on the parameters the tasks share.')
  shuffle_buffer: int = _field(10_000, 'Shuffle buffer of the client\'s input pipeline.')

  def __post_init__(self):
    if self.local_epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
      raise ValueError('local_epochs and batch_size must be >= 1 and learning_rate > 0')
    if self.reg_lambda < 0 or self.prox_mu < 0:
      raise ValueError('reg_lambda and prox_mu must be >= 0')
    if not 0 <= self.apfl_alpha <= 1 or self.embedding_lr_scale <= 0 or self.sparse_embedding_lr_scale <= 0:
      raise ValueError(f'apfl_alpha must be in [0, 1] and embedding_lr_scale, sparse_embedding_lr_scale > 0, got '
                       f'{self.apfl_alpha}, {self.embedding_lr_scale}, {self.sparse_embedding_lr_scale}')

  def table_scales(self, categorical) -> Tuple[float, ...]:
    """The step scale of each categorical feature's embedding table (`categorical`: the spec's features)."""
    return tuple(self.sparse_embedding_lr_scale if f.sparse else self.embedding_lr_scale for f in categorical)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run and its run directory."""

  data: str = _field('synthetic', 'A prepared data folder, or "synthetic" for the embedded default.')
  algorithm: str = _field('pfmsmtrec', 'The algorithm: pfmsmtrec, its ablations, a baseline or the centralized '
                          'reference (`pfmsmt algorithms` lists them).', enum=algorithm_names)
  template: str = _field('', 'A template JSON file that replaces the algorithm\'s own template.')
  rounds: int = _field(20, 'Communication rounds.')
  output: str = _field('', 'Run directory (config.json, rounds.csv, metrics.json, tb/, checkpoints).')
  seed: int = _field(0, 'Seed of the model initialization and of each round\'s shuffling.')
  eval_every: int = _field(1, 'Evaluate on the valid split every N rounds (and always after the last); the test '
                           'split is evaluated only for the selected models and the last round\'s.')
  select: str = _field('best_per_scenario', 'Which evaluated round\'s model each scenario deploys, chosen on valid: '
                       'last; best (best mean valid AUC); best_per_scenario (each scenario its own best, kept in '
                       'its own storage). See federated/selection.py.', enum=('last', 'best', 'best_per_scenario'))
  verify_data: bool = _field(True, 'Check the prepared shards\' SHA-256 against summary.json before the first '
                             'round (their sizes are always checked); false skips the checksums.')
  resume: bool = _field(False, 'Continue the run in --output from its last checkpoint.')
  overwrite: bool = _field(False, 'Replace an existing run directory at --output.')
  workers: Tuple[str, ...] = _field((), 'host:port of `pfmsmt worker`s: run the clients there (default: the local '
                                    'runtime). --data then needs only spec.json; each worker holds its rows.')
  placement: Tuple[str, ...] = _field((), 'SCENARIO:WORKER_INDEX for each scenario (default: scenarios split '
                                      'evenly over --workers, in order).')
  tls_ca: str = _field('', 'With --workers: the CA certificate that signed the workers\' certificates (`pfmsmt tls '
                       'init` writes ca.pem); with --tls_cert and --tls_key, every worker connection is mutual TLS.')
  tls_cert: str = _field('', 'With --workers: this coordinator\'s certificate (PEM), signed by the workers\' CA.')
  tls_key: str = _field('', 'With --workers: the private key of --tls_cert.')

  def __post_init__(self):
    if self.rounds < 1 or self.eval_every < 1:
      raise ValueError('rounds and eval_every must be >= 1')
    if not self.output:
      raise ValueError('--output (the run directory) is required')
    tls = (self.tls_ca, self.tls_cert, self.tls_key)
    if any(tls) and not all(tls):
      raise ValueError('--tls_ca, --tls_cert and --tls_key go together: give all three or none')
    if any(tls) and not self.workers:
      raise ValueError('--tls_ca/--tls_cert/--tls_key secure the connections to --workers; there are none')


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
  """One silo's `pfmsmt worker`: what it serves, who may connect, and its limits."""

  port: int = _field(8000, 'Port of the worker\'s TLS endpoint (the executor itself is never reachable).')
  host: str = _field('', 'Address the endpoint listens on (default: every interface of this machine).')
  data_root: str = _field('', 'This silo\'s prepared data folder.')
  state_root: str = _field('', 'Where this silo\'s local parameters are kept (default: --data_root/../state).')
  verify_data: bool = _field(True, 'Check the held shards\' SHA-256 against summary.json at start-up (sizes are '
                             'always checked).')
  tls_cert: str = _field('', 'This worker\'s certificate (PEM; `pfmsmt tls init` writes one per silo).')
  tls_key: str = _field('', 'The private key of --tls_cert.')
  tls_client_ca: str = _field('', 'The CA whose certificates may connect (the coordinator\'s): every other client is '
                              'refused.')
  insecure: bool = _field(False, 'Serve plain gRPC without TLS: anyone who reaches --port can run any TensorFlow '
                          'graph on this machine, with this user\'s rights. Only for a private test network.')
  max_message_mb: int = _field(1024, 'Largest gRPC message the executor accepts, in MB.')
  max_concurrent_calls: int = _field(MAX_CONCURRENT_CALLS, 'Most computations the executor runs at once.')

  def __post_init__(self):
    tls = (self.tls_cert, self.tls_key, self.tls_client_ca)
    if any(tls) and not all(tls):
      raise ValueError('--tls_cert, --tls_key and --tls_client_ca go together: give all three or none')
    if not any(tls) and not self.insecure:
      raise ValueError('a worker needs --tls_cert, --tls_key and --tls_client_ca (`pfmsmt tls init` makes them); '
                       '--insecure serves plain gRPC instead, which lets anyone who reaches the port run any '
                       'TensorFlow graph on this machine')
    if all(tls) and self.insecure:
      raise ValueError('--insecure and the --tls_* flags exclude each other')
    if self.max_message_mb < 1 or self.max_concurrent_calls < 1:
      raise ValueError('--max_message_mb and --max_concurrent_calls must be >= 1')
    if not self.data_root:
      raise ValueError('--data_root is required')

  @property
  def tls(self) -> bool:
    return bool(self.tls_cert)


@dataclasses.dataclass(frozen=True)
class TlsInitConfig:
  """`pfmsmt tls init`: a CA and one certificate per party of a federation (federated/tls.py)."""

  output: str = _field('', 'Folder for ca.pem, ca.key and NAME.pem, NAME.key per name.')
  names: Tuple[str, ...] = _field(('coordinator',), 'One certificate per name: the coordinator and each silo.')
  hosts: Tuple[str, ...] = _field((), 'Host names or IP addresses the workers are dialled at (every certificate '
                                  'names them, and localhost); a worker\'s address must be among them.')
  days: int = _field(365, 'Validity of the certificates, in days.')
  overwrite: bool = _field(False, 'Replace certificates already in --output.')

  def __post_init__(self):
    if not self.output:
      raise ValueError('--output is required')
    if self.days < 1:
      raise ValueError(f'--days must be >= 1, got {self.days}')


@dataclasses.dataclass(frozen=True)
class TuneConfig:
  """A search of one algorithm's settings on the valid split (federated/tuning.py)."""

  budget: int = _field(12, 'Trials per search (run to the end or stopped early by the pruner); the same for '
                       'every algorithm makes a fair comparison.')
  prune: bool = _field(True, 'Stop a trial early when its best valid mean AUC so far is below the median of the '
                       'earlier trials at the same round (Optuna\'s MedianPruner): the budget\'s trials cost less, '
                       'and each still counts as one.')
  prune_startup_trials: int = _field(5, 'Trials that always run every round, before the pruner may stop one.')
  prune_warmup_rounds: int = _field(5, 'Rounds every trial runs before the pruner may stop it (early rounds favour '
                                    'settings that start fast over those that end best).')
  trial_seeds: int = _field(1, 'Runs per trial, on seeds seed..seed+N-1, scored by their mean valid AUC: a small '
                            'valid split makes the best of many one-seed trials partly the best of its noise. The '
                            'pruner watches the first seed\'s rounds.')

  def __post_init__(self):
    if self.budget < 1:
      raise ValueError(f'--budget must be >= 1, got {self.budget}')
    if self.trial_seeds < 1:
      raise ValueError(f'--trial_seeds must be >= 1, got {self.trial_seeds}')
    if self.prune_startup_trials < 0 or self.prune_warmup_rounds < 0:
      raise ValueError('--prune_startup_trials and --prune_warmup_rounds must be >= 0, got '
                       f'{self.prune_startup_trials} and {self.prune_warmup_rounds}')


@dataclasses.dataclass(frozen=True)
class CompareConfig:
  """A comparison: every algorithm x seed under the same training settings, and the report."""

  algorithms: Tuple[str, ...] = _field(('pfmsmtrec', 'fedavg', 'fedbn', 'local'), 'Algorithms to compare.')
  seeds: int = _field(5, 'Seeds 0..N-1 per algorithm (mean +- std over them, paired differences across them).')
  output: str = _field('', 'Comparison folder: runs/<algorithm>/seed_<k>/, report.md, report.csv, plots.')
  reference: str = _field('', 'The algorithm every other is paired with, seed by seed, in the report\'s '
                          'differences with 95% confidence intervals (default: the first of --algorithms).')
  tuned: str = _field('', 'A folder of `pfmsmt tune` outputs, DIR/<algorithm>/ each: every algorithm found there '
                      'runs at its best settings, the others at the flags\' (the report says which).')
  logistic_reference: bool = _field(True, 'Add the non-neural `logistic` row (per-scenario logistic regression on '
                                    'the encoded features) to the comparison, so the report shows whether the '
                                    'neural models beat it.')

  def planned(self) -> Tuple[str, ...]:
    """The algorithms the comparison runs: --algorithms, and the logistic reference row unless turned off."""
    extra = (LOGISTIC,) if self.logistic_reference and LOGISTIC not in self.algorithms else ()
    return tuple(self.algorithms) + extra

  def __post_init__(self):
    unknown = [a for a in self.algorithms if a not in algorithm_names()]
    if unknown or not self.algorithms:
      raise ValueError(f'--algorithms: unknown {unknown}; choose among {", ".join(algorithm_names())}')
    if self.seeds < 1:
      raise ValueError('--seeds must be >= 1')
    if self.reference and self.reference not in self.algorithms:
      raise ValueError(f'--reference={self.reference} is not among --algorithms {list(self.algorithms)}')
    if not self.output:
      raise ValueError('--output (the comparison folder) is required')


@dataclasses.dataclass
class RunSetup:
  """Every setting of one run: what `pfmsmt train` reads from its flags and writes to RUN/config.json."""

  cfg: TrainConfig
  model_cfg: model_config.ModelConfig = model_config.ModelConfig()
  client_cfg: ClientConfig = ClientConfig()
  aggregation_cfg: AggregationConfig = AggregationConfig()

  def seeded_model_cfg(self) -> model_config.ModelConfig:
    """The model is seeded by the run's --seed unless the model config sets its own seed."""
    seed = self.cfg.seed if self.model_cfg.seed is None else self.model_cfg.seed
    return dataclasses.replace(self.model_cfg, seed=seed)
