"""Configs: one loader for the command line, the benchmarks and the tests, and the checks run before a job.

A config is a Python file with a `get_config()` returning an `ml_collections.ConfigDict`; overrides are
dotted keys (`train.steps=2000`). Every value is checked against its allowed range before anything runs,
and a refusal names the key, the value and what is allowed.
"""

import ast
import importlib.util
import math
import os


class ConfigError(ValueError):
    """A config value is out of its allowed range, or a key does not exist."""


def load_config(path, overrides=None):
    """`get_config()` of the config file at `path`, with `overrides` applied.

    Args:
      path: a Python config file.
      overrides: dict `{"a.b": value}` or list of `"a.b=value"` strings (values parsed as Python literals
        where they parse, else taken as strings).

    Raises:
      ConfigError: the file does not exist or has no get_config, or an override names a key the config
        does not have (a typo would otherwise add a key nothing reads).
    """
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    name = "tfls_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path!r} has no get_config()")
    config = module.get_config()
    if isinstance(overrides, list | tuple):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            if p not in node:
                raise ConfigError(f"config override {key!r}: {path} has no key {p!r}")
            node = node[p]
        if leaf not in node:
            raise ConfigError(f"config override {key!r}: {path} has no such key")
        node[leaf] = value
    return config


def parse_overrides(items):
    """`["a.b=1", "c=x"]` -> `{"a.b": 1, "c": "x"}`."""
    overrides = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"config override {item!r} is not key=value")
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def _get(config, key):
    node = config
    for part in key.split("."):
        if part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_int(config, key, minimum=None, maximum=None):
    """A problem tuple when `config.<key>` is not an integer in [minimum, maximum], else None."""
    value = _get(config, key)
    if value is _MISSING:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if ok:
        return None
    return key, value, _range("an integer", minimum, maximum)


def check_float(config, key, minimum=None, maximum=None, exclusive_minimum=False):
    """A problem tuple when `config.<key>` is not a finite number in its range, else None."""
    value = _get(config, key)
    if value is _MISSING:
        return None
    ok = _is_number(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    ok = ok and (maximum is None or value <= maximum)
    if ok:
        return None
    if exclusive_minimum:
        allowed = f"a finite number > {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    else:
        allowed = _range("a finite number", minimum, maximum)
    return key, value, allowed


def check_choice(config, key, choices):
    value = _get(config, key)
    if value is _MISSING or value in choices:
        return None
    return key, value, "one of " + ", ".join(repr(c) for c in choices)


def check_paths(config, key, kind="folder"):
    """Every comma-separated path in `config.<key>` must exist ("" means unused)."""
    value = _get(config, key)
    if value is _MISSING or not value:
        return None
    exists = os.path.isdir if kind == "folder" else os.path.exists
    missing = [p for p in str(value).split(",") if p and not exists(os.path.expanduser(p))]
    if not missing:
        return None
    return key, value, f"existing {kind}s ({', '.join(missing)} not found)"


def _range(kind, minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


OPTIMIZERS = ("adam", "adadelta", "sgd")


def base_problems(config):
    """Problems in the blocks every task shares (tfls/config_base.py)."""
    checks = [
        check_int(config, "seed", 0),
        check_choice(config, "distribute", ("none", "mirrored", "multi_worker", "tpu")),
        check_int(config, "train.steps", 1),
        check_int(config, "train.batch_size", 1),
        check_choice(config, "train.optimizer", OPTIMIZERS),
        check_float(config, "train.learning_rate", 0.0, exclusive_minimum=True),
        check_float(config, "train.clipnorm", 0.0),
        check_choice(config, "train.schedule", ("constant", "cosine")),
        check_int(config, "train.warmup_steps", 0),
        check_float(config, "train.final_learning_rate_ratio", 0.0, 1.0),
        check_paths(config, "train.init_from"),
        check_paths(config, "train.warm_start"),
        check_int(config, "train.eval_every", 0),
        check_int(config, "train.checkpoint_every", 1),
        check_int(config, "train.log_every", 1),
        check_int(config, "surrogate.pretrain_steps", 0),
        check_paths(config, "surrogate.init_from"),
        check_int(config, "surrogate.batch_size", 1),
        check_choice(config, "surrogate.optimizer", OPTIMIZERS),
        check_float(config, "surrogate.learning_rate", 0.0, exclusive_minimum=True),
        check_int(config, "surrogate.inner_steps", 1),
        check_choice(config, "surrogate.pretrain_schedule", ("constant", "cosine")),
        check_float(config, "surrogate.pretrain_final_ratio", 0.0, 1.0),
        check_float(config, "surrogate.local_weight", 0.0, 1.0),
        check_float(config, "surrogate.grad_penalty_weight", 0.0),
        check_int(config, "surrogate.grad_penalty_every", 1),
        check_choice(config, "surrogate.grad_penalty_one_sided", (False, True)),
        check_choice(config, "surrogate.global_pairs", ("py_function", "dataset")),
        check_choice(config, "surrogate.distance", ("l2", "l1", "squared_l2")),
        check_choice(config, "tune.jit_compile", (False, True)),
        check_float(config, "surrogate.robust_threshold"),
        check_int(config, "surrogate.eval_pairs", 1),
        check_int(config, "tune.steps", 1),
        check_int(config, "tune.surrogate_warmup_steps", 0),
        check_choice(config, "tune.optimizer", OPTIMIZERS),
        check_float(config, "tune.learning_rate", 0.0, exclusive_minimum=True),
        check_float(config, "tune.clipnorm", 0.0),
        check_float(config, "tune.ordinary_loss_weight", 0.0),
        check_float(config, "tune.filter_threshold"),
        check_float(config, "tune.distance_power", 0.1, 4.0),
        check_choice(config, "tune.objective", ("surrogate", "exact")),
        check_int(config, "tune.surrogate_every", 1),
        check_int(config, "tune.global_batch_size", 0),
    ]
    problems = [c for c in checks if c is not None]
    warmup, steps = _get(config, "train.warmup_steps"), _get(config, "train.steps")
    cosine = _get(config, "train.schedule") == "cosine"
    if cosine and _is_number(warmup) and _is_number(steps) and steps >= 1 and warmup >= steps:
        problems.append(("train.warmup_steps", warmup, f"an integer < train.steps ({steps})"))
    models = _get(config, "evaluate_models")
    allowed = ("baseline", "control", "tuned")
    if models is not _MISSING and (
        isinstance(models, str) or not models or not all(isinstance(m, str) and m in allowed for m in models)
    ):
        problems.append(("evaluate_models", models, f"a non-empty list of {', '.join(allowed)}"))
    warm_start = _get(config, "train.warm_start")
    if _get(config, "train.init_from") not in (_MISSING, "") and warm_start not in (_MISSING, ""):
        problems.append(("train.warm_start", warm_start, '"" while train.init_from is set (it skips training)'))
    return problems


def validate(config, task_class):
    """Check `config` for `task_class` before anything runs.

    Raises:
      ConfigError: one message naming every bad key, its value and the allowed range.
    """
    problems = base_problems(config) + list(task_class.validate_config(config))
    if problems:
        raise ConfigError("; ".join(f"config.{key}={value!r}: must be {allowed}" for key, value, allowed in problems))
    return config
