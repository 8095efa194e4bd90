"""Shared by the tests: loading a repository file that is not a package module (bench scripts, configs, the
export client) and listing the op types of a traced step (the no-host-call check)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ops that leave the graph for Python: a step holding one cannot run under XLA or on a TPU
HOST_CALL_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def load_file(name, *path):
    """The module in `ROOT/<path...>` (e.g. `load_file("quality", "bench", "quality.py")`) under `name`."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_bench(name):
    """`bench/<name>.py` as a module (bench/ must be on sys.path for its own `import common`)."""
    return load_file(name, "bench", f"{name}.py")


def op_types(concrete):
    """Every op type of a concrete function's graph, nested functions (cond branches, loops) included."""
    graph_def = concrete.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types
