"""Dataclass configs exposed as absl flags: each config field is one flag, documented by its `help` metadata."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Type, TypeVar

from absl import flags

T = TypeVar('T')


def field(default, help_text: str, **metadata):
  """A config dataclass field documented for its flag; `enum=(...)` makes the flag an enum (a callable there is
  called when the flag is defined: choices that come from a registry)."""
  return dataclasses.field(default=default, metadata={'help': help_text, **metadata})


def define_flags(config_cls: Type[Any], module_name: str, flag_values: flags.FlagValues = flags.FLAGS,
                 prefix: str = '', exclude: tuple = ()) -> None:
  """Defines one flag per field, owned by `module_name` (what `--help` of that module lists)."""
  hints = typing.get_type_hints(config_cls)
  for field in dataclasses.fields(config_cls):
    if field.name in exclude:
      continue
    name = prefix + field.name
    help_text = field.metadata.get('help', field.name)
    default = field.default
    kind = _unwrap_optional(hints[field.name])
    if 'enum' in field.metadata:
      choices = field.metadata['enum']
      flags.DEFINE_enum(name, default, list(choices() if callable(choices) else choices), help_text, flag_values=flag_values, module_name=module_name)
    elif kind is bool:
      flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values, module_name=module_name)
    elif kind is int:
      flags.DEFINE_integer(name, default, help_text, flag_values=flag_values, module_name=module_name)
    elif kind is float:
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values, module_name=module_name)
    elif kind is str:
      flags.DEFINE_string(name, default, help_text, flag_values=flag_values, module_name=module_name)
    elif typing.get_origin(kind) is tuple:
      flags.DEFINE_list(name, [str(d) for d in default], help_text + ' (comma-separated)', flag_values=flag_values,
                        module_name=module_name)
    else:
      raise TypeError(f'{config_cls.__name__}.{field.name}: no flag type for {kind}')


def from_flags(config_cls: Type[T], flag_values: flags.FlagValues = flags.FLAGS, prefix: str = '',
               **overrides) -> T:
  """The config from the flags; `overrides` set the fields that have no flag of their own."""
  hints = typing.get_type_hints(config_cls)
  values = dict(overrides)
  for field in dataclasses.fields(config_cls):
    if field.name in overrides:
      continue
    value = flag_values[prefix + field.name].value
    kind = _unwrap_optional(hints[field.name])
    if typing.get_origin(kind) is tuple:
      item = typing.get_args(kind)[0]
      try:
        value = tuple(item(v.strip()) for v in (value or []) if v.strip())
      except ValueError:
        raise ValueError(f'--{prefix + field.name}: expected comma-separated {item.__name__} values, got {value}')
    values[field.name] = value
  return config_cls(**values)


def _unwrap_optional(kind):
  """Optional[X] -> X (the flag's default is then None)."""
  if typing.get_origin(kind) is typing.Union:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if len(args) == 1:
      return args[0]
  return kind
