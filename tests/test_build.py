"""BUILD declares every module and test file for Bazel users; this keeps it in step with the tree."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _declared():
    with open(os.path.join(ROOT, "BUILD")) as f:
        text = f.read()
    return set(re.findall(r'"([\w/]+\.py)"', text)), text


def _tree():
    files = glob.glob("tfls/**/*.py", root_dir=ROOT, recursive=True)
    files += glob.glob("tests/*.py", root_dir=ROOT)
    files += glob.glob("export/*.py", root_dir=ROOT)
    return {f for f in files if "__pycache__" not in f}


def test_every_module_and_test_is_declared():
    declared, _ = _declared()
    missing = sorted(_tree() - declared)
    assert not missing, f"add these files to BUILD: {missing}"


def test_every_declared_file_exists():
    declared, _ = _declared()
    stale = sorted(f for f in declared if not os.path.exists(os.path.join(ROOT, f)))
    assert not stale, f"BUILD names files that do not exist: {stale}"


def test_each_test_file_is_a_py_test_and_main_a_py_binary():
    _, text = _declared()
    for test in glob.glob("tests/test_*.py", root_dir=ROOT):
        name = os.path.basename(test)[:-3]
        assert re.search(r'py_test\(\s*name = "' + name + '"', text), f"no py_test target for {test}"
    assert re.search(r'py_binary\(\s*name = "tfls"', text)
