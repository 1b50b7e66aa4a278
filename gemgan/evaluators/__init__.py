"""Evaluators by type, as big_vision's `evaluators/<type>.py` and StyleGAN2-ADA's metric registry.

A config declares each evaluator as an entry

  config.evaluators.<name> = {type, every_kimg, num_samples, ...type's own keys}

(`type` missing means "inception", as configs written before types had).
Each type is a class registered under its name with `@register("<type>")`,
one module per type: `gemgan/evaluators/<type>.py` is imported the first
time its type is asked for, so a new metric is that module plus one config
entry. Types defined elsewhere (an experiment, a test) register the same
way. `gemgan.evaluate --evaluators=<type>,...` uses the same registry.

Built in: inception (FID, KID, precision/recall, density/coverage, SWD: one
Inception pass), swd, spectral, per_class_fid, class_accuracy.
"""
import importlib

import ml_collections

BUILT_IN = ("inception", "swd", "spectral", "per_class_fid", "class_accuracy")
DEFAULT_TYPE = "inception"
COMMON_KEYS = ("type", "every_kimg", "num_samples")

_REGISTRY: dict = {}


def register(type_name: str):
  """Class decorator: makes an `EvaluatorType` subclass the type `type_name`."""

  def add(cls):
    _REGISTRY[type_name] = cls
    return cls

  return add


def get(type_name: str):
  """The class of evaluator type `type_name`; KeyError naming the known ones."""
  if type_name not in _REGISTRY and type_name.isidentifier():
    try:
      importlib.import_module(f"{__name__}.{type_name}")
    except ModuleNotFoundError as e:
      if e.name != f"{__name__}.{type_name}":
        raise
  if type_name not in _REGISTRY:
    known = sorted(set(BUILT_IN) | set(_REGISTRY))
    raise KeyError(f"unknown evaluator type {type_name!r}; choose one of {known} or "
                   f"register one (gemgan/evaluators/__init__.py)")
  return _REGISTRY[type_name]


def type_of(spec) -> str:
  return spec.get("type", DEFAULT_TYPE)


def spec(type_name: str, num_samples: int, every_kimg: float = 0.0,
         **keys) -> ml_collections.ConfigDict:
  """A config entry, e.g. `config.evaluators.spec64 = evaluators.spec("spectral", 1000, 10)`."""
  return ml_collections.ConfigDict({"type": type_name, "every_kimg": float(every_kimg),
                                    "num_samples": int(num_samples), **keys})


def check(entry, key: str, config=None) -> None:
  """Raises ConfigError naming `config.<key>[.<k>]` for an entry that cannot work."""
  from gemgan.evaluators import base  # pylint: disable=g-import-not-at-top
  base.require(isinstance(entry, ml_collections.ConfigDict), key,
               "must be a dict {type, every_kimg, num_samples, ...}")
  type_name = type_of(entry)
  base.require(isinstance(type_name, str), f"{key}.type", f"must be a string, got {type_name!r}")
  try:
    cls = get(type_name)
  except KeyError as e:
    raise base.config_lib.ConfigError(f"config.{key}.type: {e.args[0]}") from None
  for k in ("every_kimg", "num_samples"):
    base.require(k in entry, f"{key}.{k}", "missing (every evaluator has type, every_kimg, "
                 "num_samples)")
  every, num = entry.every_kimg, entry.num_samples
  base.require(isinstance(every, (int, float)) and not isinstance(every, bool) and every >= 0,
               f"{key}.every_kimg", f"must be a number >= 0 (0: off), got {every!r}")
  base.require(isinstance(num, int) and not isinstance(num, bool) and num >= 2,
               f"{key}.num_samples", f"must be an integer >= 2, got {num!r}")
  for k in entry:
    base.require(k in COMMON_KEYS or k in cls.KEYS, f"{key}.{k}",
                 f"not a key of evaluator type {type_name!r} (its keys: "
                 f"{', '.join(COMMON_KEYS + tuple(cls.KEYS))})")
  cls.check(entry, key)
  if config is not None and cls.NEEDS_CLASSES:
    base.require(config.model.conditional, f"{key}.type", f"{type_name!r} needs a "
                 "class-conditional model (config.model.conditional=True)")


def build(name: str, entry, reals):
  """The evaluator of config entry `entry`, named `name`, on the real set `reals`."""
  return get(type_of(entry))(name, entry, reals)
