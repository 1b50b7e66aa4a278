"""Type and range checks of one config key, shared by config_lib and the architectures.

Each takes the key-naming `check(cond, key, message)` that config_lib.validate
passes around (it raises ConfigError "config.<key>: <message>"), so a model's
`check_config` words its errors as config_lib's own tables do, without
importing config_lib (which imports the models).
"""


def get(config, key: str):
  """config["a"]["b"] for key "a.b"."""
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
  return is_int(v) or isinstance(v, float)


def integer(check, config, key: str, lowest: int, note: str = "") -> None:
  """An int >= lowest; `note` says what the lowest value means, e.g. " (0 disables)"."""
  v = get(config, key)
  check(is_int(v), key, f"must be an integer, got {v!r}")
  check(v >= lowest, key, f"must be >= {lowest}{note}, got {v}")


def number(check, config, key: str, lowest: float, highest=None, open_top: bool = False,
           note: str = "") -> None:
  """An int or float in [lowest, highest] ([lowest, highest) if open_top; no top if None)."""
  v = get(config, key)
  check(is_number(v), key, f"must be a number, got {v!r}")
  if highest is None:
    check(v >= lowest, key, f"must be >= {lowest}{note}, got {v}")
  else:
    inside = lowest <= v < highest if open_top else lowest <= v <= highest
    check(inside, key, f"must be in [{lowest}, {highest}{')' if open_top else ']'}, got {v}")


def positive(check, config, key: str) -> None:
  v = get(config, key)
  check(is_number(v) and v > 0, key, f"must be a number > 0, got {v!r}")


def boolean(check, config, key: str) -> None:
  v = get(config, key)
  check(isinstance(v, bool), key, f"must be True or False, got {v!r}")


def string(check, config, key: str) -> None:
  v = get(config, key)
  check(isinstance(v, str), key, f"must be a string, got {v!r}")


def choice(check, config, key: str, choices, noun: str = "") -> None:
  """One of `choices`; with a `noun` the message reads "unknown <noun> ..."."""
  v = get(config, key)
  check(v in choices, key, f"unknown {noun} {v!r}; choose one of {choices}" if noun
        else f"{v!r} is not one of {choices}")
