"""Tasks by name (`str`, `det`) or by import path (`package.module:Class`), so a user's own task runs from the
command line, the benchmarks and the tests with no edit to tfls."""

import importlib
import os

from tfls.task import Task

BUILTIN_TASKS = {
    "str": "tfls.recognition.task:RecognitionTask",
    "det": "tfls.detection.task:DetectionTask",
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TaskNotFound(ValueError):
    """`--task` names neither a built-in task nor an importable Task class."""


def task_class(spec):
    """The `Task` subclass named by `spec`: a built-in name or `package.module:Class`.

    Raises:
      TaskNotFound: with the known names, or what failed to import.
    """
    path = BUILTIN_TASKS.get(spec, spec)
    if ":" not in path:
        raise TaskNotFound(
            f"unknown task {spec!r}; known tasks: {', '.join(sorted(BUILTIN_TASKS))}, or an import path "
            "package.module:TaskClass"
        )
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TaskNotFound(f"task {spec!r}: cannot import module {module_name!r} ({e})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskNotFound(f"task {spec!r}: {module_name} has no Task subclass named {class_name!r}")
    if not cls.primary_metric:
        raise TaskNotFound(f"task {spec!r}: {class_name} does not declare its primary_metric")
    return cls


def default_config_path(cls):
    """The task's default config file, absolute (relative paths are taken from the repository root)."""
    if not cls.default_config:
        return None
    return cls.default_config if os.path.isabs(cls.default_config) else os.path.join(ROOT, cls.default_config)
