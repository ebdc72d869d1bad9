"""The benchmark and probe scripts still name what the package defines.

They are run by hand, months apart, against a package that keeps changing: bench_path.py's
step and memory parts called five helpers of ``knockoffnet.path`` that had been renamed or
folded away long before anyone ran them again (found 2026-12-06). Running every benchmark
here would take hours, so this reads them instead: every name a script imports from the
package, and every ``module.attribute`` chain it reads off an imported package module, must
exist, and every call of a package function must fit its signature (argument count and
keyword names).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _bindings(tree: ast.Module) -> tuple[dict[str, object], list[str]]:
    """{local name: package module or object} of the script's imports, and the imported
    names that do not exist."""
    bound: dict[str, object] = {}
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("knockoffnet"):
            module = importlib.import_module(node.module)
            for a in node.names:
                obj = _module(f"{node.module}.{a.name}") or getattr(module, a.name, None)
                if obj is None:
                    missing.append(f"{node.module}.{a.name}")
                else:
                    bound[a.asname or a.name] = obj
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("knockoffnet"):  # `import a.b` binds `a`
                    bound[a.asname or "knockoffnet"] = importlib.import_module(
                        a.name if a.asname else "knockoffnet"
                    )
    return bound, missing


def _resolve(expr: ast.expr, bound: dict[str, object], missing: list[str]) -> object | None:
    """The package object ``expr`` (a name or a chain of attributes) names, if it is one."""
    chain, base = [], expr
    while isinstance(base, ast.Attribute):
        chain.append(base.attr)
        base = base.value
    if not (isinstance(base, ast.Name) and base.id in bound):
        return None
    obj = bound[base.id]
    for attr in reversed(chain):
        if not isinstance(obj, ModuleType):
            return None  # an attribute of a class or function: not the package's API
        sub = _module(f"{obj.__name__}.{attr}")
        if sub is None and not hasattr(obj, attr):
            missing.append(f"{obj.__name__}.{attr}")
            return None
        obj = sub or getattr(obj, attr)
    return obj


def scan(source: str) -> list[str]:
    """What ``source`` uses of the package that is gone: ``module.name`` for a name that
    does not exist, ``name(...): why`` for a call its function's signature refuses."""
    tree = ast.parse(source)
    bound, problems = _bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Store):
            _resolve(node, bound, problems)
        if not isinstance(node, ast.Call):
            continue
        func = _resolve(node.func, bound, [])
        starred = any(isinstance(a, ast.Starred) for a in node.args)
        if func is None or starred or any(k.arg is None for k in node.keywords):
            continue
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            continue
        try:
            sig.bind(*node.args, **{k.arg: k.value for k in node.keywords})
        except TypeError as err:
            problems.append(f"{getattr(func, '__qualname__', func)}(...) line {node.lineno}: {err}")
    return sorted(set(problems))


def test_the_scanner_finds_a_missing_helper():
    src = (
        "from knockoffnet import path as P\n"
        "from knockoffnet.path import dense_fit, _prepare\n"
        "import knockoffnet.grid\n"
        "P.split_indices\nP._sizes(2)\nknockoffnet.grid.lambda_grid\nknockoffnet.grid.nothing\n"
    )
    assert scan(src) == [
        "knockoffnet.grid.nothing",
        "knockoffnet.path._prepare",
        "knockoffnet.path._sizes",
    ]


def test_the_scanner_finds_a_call_the_signature_refuses():
    src = (
        "from knockoffnet import path as P\n"
        "from knockoffnet.path import z_statistics\n"
        "z_statistics([1.0], [])\n"  # fine
        "z_statistics([1.0], weights=[], lambdas_=2)\n"  # an argument that is gone
        "P.split_indices(1, 2, 3, 4)\n"  # one positional too many
        "P.train_path(*args)\n"  # cannot be checked statically: skipped
    )
    problems = scan(src)
    assert len(problems) == 2
    assert problems[0].startswith("split_indices(...) line 5")
    assert "lambdas_" in problems[1] and "line 4" in problems[1]


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmark_scripts_use_names_the_package_defines(script: Path):
    assert scan(script.read_text()) == [], f"{script.name} uses what the package no longer has"
