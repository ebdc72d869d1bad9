"""Static checks of the per-rule conda envs (envs/*.yaml) and of every rule's directives.

Conda channels are not reachable from CI, so the envs are declared and checked, never built:

* every rule has `log`, `benchmark`, `resources`, `threads` and `conda` directives;
* every third-party module that a rule's script imports (directly, or through the knockoffnet
  modules it imports, transitively) is a dependency of that rule's env; a lazy import inside
  a function counts when the script can reach that function (a same-module call graph), so
  e.g. `runtime.training_inputs` pulling in torch only counts for the training rules;
* every env uses conda-forge (not `defaults`) and pins every package as `name=version`.

Rules and their `conda:`/`script:` paths are read from the Snakefile and workflow/rules/*.smk
with a small block parser (the rule list is cross-checked against `snakemake --list-rules`);
imports are read with `ast`.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
PACKAGE = REPO / "scripts" / "knockoffnet"
REQUIRED_DIRECTIVES = ("log", "benchmark", "resources", "threads", "conda")
# Directives that make a rule run something; rules without any only collect targets.
ACTIONS = ("script", "shell", "run", "wrapper", "notebook", "cwl")

# Import name -> acceptable conda-forge package names (identity when not listed).
CONDA_NAMES: dict[str, set[str]] = {
    "sklearn": {"scikit-learn"},
    "torch": {"pytorch", "pytorch-gpu", "pytorch-cpu"},
    "yaml": {"pyyaml"},
    "cvxpy": {"cvxpy-base", "cvxpy"},
    "PIL": {"pillow"},
    "mpl_toolkits": {"matplotlib", "matplotlib-base"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
    "skimage": {"scikit-image"},
    "cv2": {"opencv"},
    "dateutil": {"python-dateutil"},
}
# Needs that are not imports: a source pattern -> the conda package it requires at run time.
IMPLICIT: dict[str, tuple[re.Pattern[str], set[str]]] = {
    "pandas parquet I/O": (re.compile(r"\.(read|to)_parquet\("), {"pyarrow"}),
    "cvxpy's CLARABEL solver": (re.compile(r"[\"']CLARABEL[\"']"), {"clarabel"}),
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)=(?P<version>\d[A-Za-z0-9_.+]*)$")


@dataclass
class Rule:
    name: str
    file: Path
    directives: dict[str, str | None] = field(default_factory=dict)

    def path_of(self, directive: str) -> Path | None:
        value = self.directives.get(directive)
        return (self.file.parent / value).resolve() if value else None


def parse_rules(path: Path) -> list[Rule]:
    """Rules of one .smk file: name and top-level directives (with a quoted path value, if any).

    A rule block is every line after `rule NAME:` that is blank or indented deeper than the
    `rule` keyword (rules may sit inside an `if` block); its directives are the lines one
    indentation level deeper.
    """
    lines = path.read_text().splitlines()
    rules = []
    header = re.compile(r"^(?P<indent>[ ]*)(?:rule|checkpoint)\s+(?P<name>\w+)\s*:\s*$")
    for i, line in enumerate(lines):
        match = header.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        rule = Rule(match["name"], path)
        body_indent = None
        for j in range(i + 1, len(lines)):
            text = lines[j]
            if not text.strip():
                continue
            depth = len(text) - len(text.lstrip(" "))
            if depth <= indent:
                break
            body_indent = body_indent or depth
            directive = re.match(r"^\s*(\w+)\s*:\s*(.*)$", text)
            if depth == body_indent and directive:
                rule.directives[directive[1]] = _first_string(directive[2], lines[j + 1 :])
        rules.append(rule)
    return rules


def _first_string(rest: str, following: list[str]) -> str | None:
    """The quoted value of a directive: on its own line, or on the next non-blank line."""
    candidates = [rest] if rest.strip() else [t for t in following if t.strip()][:1]
    for text in candidates:
        quoted = re.match(r"""^\s*(["'])(?P<value>[^"']+)\1""", text)
        if quoted:
            return quoted["value"]
    return None


ALL_RULES = [rule for path in RULE_FILES for rule in parse_rules(path)]
JOB_RULES = [rule for rule in ALL_RULES if set(ACTIONS) & set(rule.directives)]


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True for imports inside `try: ... except ImportError` or `if TYPE_CHECKING:` blocks."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for handler in parent.handlers:
                names = handler.type
                text = ast.unparse(names) if names is not None else "BaseException"
                if "ImportError" in text or "ModuleNotFoundError" in text:
                    return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        node = parent
    return False


def _package_module(name: str) -> Path | None:
    """scripts/knockoffnet file for a dotted `knockoffnet...` module name, if it exists."""
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts) if parts else PACKAGE
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class Module:
    """One parsed file: its import-time imports and, per top-level def/class, the imports and
    same-module names used inside it (lazy imports in a function count only when it is used)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.parents = {
            child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)
        }
        self.defs = {
            node.name: node
            for node in self.tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }

    def imports(self, root: ast.AST, *, skip_defs: bool) -> list[tuple[str, list[str]]]:
        """(module, [imported names]) of the imports under `root`; with `skip_defs`, only those
        run at import time (not inside a function or a method)."""
        found = []
        for node in ast.walk(root):
            if not isinstance(node, ast.Import | ast.ImportFrom) or _guarded(node, self.parents):
                continue
            if skip_defs and self._in_function(node):
                continue
            if isinstance(node, ast.Import):
                found += [(alias.name, ["*"]) for alias in node.names]
                continue
            base = node.module or ""
            if node.level:  # relative import inside the package
                here = self.path.relative_to(PACKAGE.parent).with_suffix("").parts
                anchor = list(here[: len(here) - node.level])
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names]))
        return found

    def _in_function(self, node: ast.AST) -> bool:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return True
        return False

    def names_in(self, root: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(root) if isinstance(n, ast.Name)}

    def module_level_names(self) -> set[str]:
        """Names referenced by code that runs at import time (outside any def)."""
        names: set[str] = set()
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names |= {n for d in node.decorator_list for n in self.names_in(d)}
            elif not isinstance(node, ast.ClassDef):
                names |= self.names_in(node)
        return names


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if REPO in path.parents else str(path)


_PARSED: dict[Path, Module] = {}


def _parsed(path: Path) -> Module:
    """Each file is parsed once per test session."""
    if path not in _PARSED:
        _PARSED[path] = Module(path)
    return _PARSED[path]


def imports_of(script: Path) -> tuple[dict[str, set[str]], set[Path]]:
    """Third-party top-level modules {name: {files}} that running `script` may import.

    Follows knockoffnet imports by symbol: a package module contributes its import-time
    imports, plus the lazy (function-level) imports of the functions/classes that are
    imported from it, and of the same-module functions those reference (transitively).
    Returns the modules and the set of files read.
    """
    found: dict[str, set[str]] = {}
    read: set[Path] = set()
    done: set[tuple[Path, str]] = set()
    queue: list[tuple[Path, str]] = [(script, "<module>")]

    def add_imports(module: Module, imports: list[tuple[str, list[str]]]) -> None:
        for name, symbols in imports:
            top = name.split(".")[0]
            if top == "knockoffnet":
                target = _package_module(name)
                for symbol in symbols:
                    sub = _package_module(f"{name}.{symbol}") if symbol != "*" else None
                    if sub is not None:  # `from knockoffnet import path`: a whole module
                        queue.append((sub, "*"))
                    elif target is not None:
                        queue.append((target, symbol))
                if target is not None:
                    queue.append((target, "<module>"))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(_shown(module.path))

    while queue:
        path, symbol = queue.pop()
        if (path, symbol) in done:
            continue
        done.add((path, symbol))
        module = _parsed(path)
        read.add(path)
        if symbol == "<module>":
            add_imports(module, module.imports(module.tree, skip_defs=True))
            used = module.module_level_names() & set(module.defs)
            queue += [(path, name) for name in used]
        elif symbol == "*":
            queue += [(path, name) for name in module.defs] + [(path, "<module>")]
        elif symbol in module.defs:
            node = module.defs[symbol]
            add_imports(module, module.imports(node, skip_defs=False))
            used = module.names_in(node) & set(module.defs)
            queue += [(path, name) for name in used]
        # else: a constant or an imported name re-exported; the module's own imports cover it
    return found, read


def load_env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def env_packages(env: dict, pip: bool = True) -> dict[str, str]:
    """{package name: pinned spec} of an env's dependencies, with its `pip:` subsection's
    packages (lower-cased, `_` as `-`) unless `pip` is False."""
    packages = {}
    for dep in env.get("dependencies", []):
        if isinstance(dep, str):
            name = re.split(r"[=<>!~ \[]", dep, maxsplit=1)[0]
            packages[name.split("::")[-1]] = dep
        elif isinstance(dep, dict) and pip:
            for spec in dep.get("pip", []):
                name = re.split(r"[=<>!~ \[]", spec, maxsplit=1)[0]
                packages[name.lower().replace("_", "-")] = spec
    return packages


# --------------------------------------------------------------------------- the rules


def test_rule_parser_finds_every_rule_snakemake_lists() -> None:
    """The block parser sees (at least) every rule Snakemake itself knows for the default config."""
    listed = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules", "--cores", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    names = {line.strip().split()[0] for line in listed.stdout.splitlines() if line.strip()}
    parsed = {rule.name for rule in ALL_RULES}
    assert names, "snakemake --list-rules printed no rules"
    assert names <= parsed, f"rules the parser missed: {sorted(names - parsed)}"


@pytest.mark.parametrize("rule", JOB_RULES, ids=lambda r: r.name)
def test_rule_has_required_directives(rule: Rule) -> None:
    missing = [d for d in REQUIRED_DIRECTIVES if d not in rule.directives]
    assert not missing, f"rule {rule.name} ({rule.file.name}) lacks {', '.join(missing)}"
    env = rule.path_of("conda")
    assert env is not None and env.is_file(), f"rule {rule.name}: conda env {env} not found"
    assert env.parent == REPO / "envs", f"rule {rule.name}: env {env} is not under envs/"
    script = rule.path_of("script")
    if script is not None:
        assert script.is_file(), f"rule {rule.name}: script {script} not found"


@pytest.mark.parametrize(
    "rule", [r for r in JOB_RULES if "script" in r.directives], ids=lambda r: r.name
)
def test_rule_env_provides_every_import(rule: Rule) -> None:
    """Each third-party module the rule's code imports is a dependency of the rule's env."""
    env_path = rule.path_of("conda")
    script = rule.path_of("script")
    assert env_path is not None and script is not None
    missing = missing_packages(script, env_path)
    assert not missing, f"rule {rule.name}: {env_path.relative_to(REPO)} lacks " + "; ".join(
        missing
    )


def missing_packages(script: Path, env_path: Path) -> list[str]:
    """What `script` (and the knockoffnet code it reaches) needs that the env does not list."""
    declared = set(env_packages(load_env(env_path)))
    imports, files = imports_of(script)
    missing = []
    for module, where in sorted(imports.items()):
        accepted = CONDA_NAMES.get(module, {module.lower().replace("_", "-"), module})
        if not accepted & declared:
            missing.append(f"{'/'.join(sorted(accepted))} (import {module} in {sorted(where)})")
    source = "\n".join(path.read_text() for path in files)
    for why, (pattern, accepted) in IMPLICIT.items():
        if pattern.search(source) and not accepted & declared:
            missing.append(f"{'/'.join(sorted(accepted))} ({why})")
    return missing


def test_check_reports_a_missing_package(tmp_path: Path) -> None:
    """The check itself: an env without scikit-learn/pyarrow fails a script that needs them."""
    script = tmp_path / "entry.py"
    script.write_text(
        "import os\nimport numpy as np\nfrom sklearn.metrics import r2_score\n"
        "from knockoffnet.errors import InputError\n"
        "def f(frame):\n    return frame.to_parquet('x.parquet')\n"
    )
    env = tmp_path / "env.yaml"
    env.write_text(
        "channels: [conda-forge, nodefaults]\ndependencies: [python=3.11, numpy=2.4.6]\n"
    )
    missing = missing_packages(script, env)
    assert len(missing) == 2
    assert missing[0].startswith("scikit-learn") and missing[1].startswith("pyarrow")


def test_every_env_is_used_by_a_rule() -> None:
    used = {rule.path_of("conda") for rule in JOB_RULES}
    unused = [p.name for p in sorted((REPO / "envs").glob("*.yaml")) if p.resolve() not in used]
    assert not unused, f"env files no rule uses: {unused}"


def test_import_scanner_follows_package_imports() -> None:
    """Sanity checks of the scanner: train.py reaches torch through knockoffnet.path (imported
    lazily inside runtime.training_inputs); ingest.py uses other runtime helpers only, so the
    lazy import is not counted for it."""
    imports, files = imports_of(REPO / "scripts" / "train.py")
    assert "torch" in imports and "numpy" in imports
    assert PACKAGE / "path.py" in files
    assert not {"os", "json", "knockoffnet", "__future__"} & set(imports)
    imports, files = imports_of(REPO / "scripts" / "ingest.py")
    assert "torch" not in imports and PACKAGE / "path.py" not in files


# --------------------------------------------------------------------------- the env files

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_uses_conda_forge_and_pins_exact_versions(path: Path) -> None:
    env = load_env(path)
    channels = env.get("channels") or []
    assert channels and channels[0] == "conda-forge", f"{path.name}: conda-forge must come first"
    assert "defaults" not in channels, f"{path.name}: the defaults channel is not allowed"
    assert "nodefaults" in channels, f"{path.name}: add `nodefaults` so only conda-forge is used"
    deps = env.get("dependencies") or []
    assert deps, f"{path.name}: no dependencies"
    bad = []
    for dep in deps:
        if isinstance(dep, dict):  # a pip: subsection needs exact == pins and conda's pip
            bad += [
                f"pip {d}" for d in dep.get("pip", []) if not re.fullmatch(r"[\w.\-]+==[\w.+]+", d)
            ]
            assert "pip" in env_packages(env, pip=False), f"{path.name}: pip: needs `pip=<version>`"
        elif not PIN.match(dep.split("::")[-1]):
            bad.append(dep)
    assert not bad, f"{path.name}: not pinned as name=version: {bad}"
    assert "python" in env_packages(env), f"{path.name}: pin python"


def test_shared_packages_have_one_version_across_envs() -> None:
    """numpy, pandas, ... are pinned to the same version in every env that has them."""
    versions: dict[str, dict[str, str]] = {}
    for path in ENV_FILES:
        for name, spec in env_packages(load_env(path)).items():
            versions.setdefault(name, {})[path.name] = spec
    differ = {n: v for n, v in versions.items() if len(set(v.values())) > 1}
    assert not differ, f"packages pinned differently across envs: {differ}"
