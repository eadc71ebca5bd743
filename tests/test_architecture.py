"""The package's shape (docs/architecture.md): no import cycles, no arrow back up the data flow, and torch
only where models run.

Imports are read from the source with ``ast``, so imports inside functions and under ``TYPE_CHECKING`` count:
a cycle that only closes when a function runs is still a knot in the design.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pluralrm"

# The data flow, bottom to top: a package may import from its own layer or a lower one, never a higher one.
LAYERS = {
    **dict.fromkeys(("pluralrm", "atomic", "config", "paths", "sqlite_file", "validation"), 0),  # foundation
    "data": 1,
    "backbone": 2,
    "rewards": 3,
    "adapt": 4,
    **dict.fromkeys(("evaluate", "select", "web"), 5),  # web: tokens, sessions, limits of both apps
    **dict.fromkeys(("generate", "collect", "label", "training", "scale"), 6),
    **dict.fromkeys(("pool", "serve"), 7),  # pool: featurize sources and fit a pool with the choices
    **dict.fromkeys(("cli", "demo", "report"), 8),  # report: reads models, runs, stores; the demo writes one
    "__main__": 9,
}
TORCH = {"torch", "transformers"}
TORCH_HOMES = {"backbone", "training"}


def module_files(root: Path = SRC) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package at ``root`` (``__init__`` = the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement may load (``from a import b``: ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolved against the importing module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    return [source, *(f"{source}.{alias.name}" for alias in node.names)]


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module → the modules it imports anywhere in its source (functions, ``TYPE_CHECKING`` blocks included).

    Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those count too, except the
    importer's own enclosing packages (already being imported when its code runs). An explicit
    ``from a.b import x`` inside ``a/b/m.py`` is an edge to ``a/b/__init__`` like any other.
    """
    modules = module_files(root)
    top = root.name
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for dotted in _imported_names(node, name, path.name == "__init__.py"):
                parts = dotted.split(".")
                if parts[0] != top:
                    continue
                while parts and ".".join(parts) not in modules:
                    parts.pop()  # ``a.b.function`` → module ``a.b``
                target = ".".join(parts)
                if not target or target == name:
                    continue
                edges[name].add(target)
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    if parent in modules and parent != name and not name.startswith(parent + "."):
                        edges[name].add(parent)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def package_of(module: str) -> str:
    """``pluralrm.adapt.kshot`` → ``adapt``; ``pluralrm.demo`` → ``demo``; ``pluralrm`` → ``pluralrm``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def arrows_up(edges: dict[str, set[str]], layers: dict[str, int] = LAYERS) -> list[str]:
    """Every import from a lower layer into a higher one, as ``importer -> imported``."""
    return sorted(
        f"{a} -> {b}"
        for a, targets in edges.items()
        for b in targets
        if layers[package_of(a)] < layers[package_of(b)]
    )


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root / "pkg"


def test_the_cycle_finder_counts_function_level_type_checking_and_own_package_imports(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            # closes only when a function runs
            "pkg/x.py": "def g():\n    from pkg.y import h\n",
            "pkg/y.py": "import pkg.x\n\ndef h():\n    pass\n",
            # closes only for a type checker
            "pkg/p.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.q import Q\n",
            "pkg/q.py": "from pkg.p import P\n",
            # a module importing its own package's __init__, which imports the module
            "pkg/sub/__init__.py": "from pkg.sub.m import M\nN = 1\n",
            "pkg/sub/m.py": "from pkg.sub import N\n",
            # no cycle: a sibling of its own package's modules, and a relative import
            "pkg/sub/k.py": "from .m import M\n",
            "pkg/z.py": "from pkg.sub.m import M\n",
        },
    )
    edges = import_graph(package)
    assert "pkg.sub" in edges["pkg.z"]  # importing pkg.sub.m runs pkg/sub/__init__ first
    assert "pkg.sub" not in edges["pkg.sub.k"]  # its own package is already being imported
    assert cycles(edges) == [["pkg.p", "pkg.q"], ["pkg.sub", "pkg.sub.m"], ["pkg.x", "pkg.y"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (each list is one knot; break it by moving what both need lower):\n" + (
        "\n".join(" ↔ ".join(c) for c in found)
    )


def test_every_package_has_a_layer():
    missing = sorted({package_of(m) for m in module_files()} - set(LAYERS))
    assert not missing, f"add {missing} to LAYERS in tests/test_architecture.py (and docs/architecture.md)"


def test_no_arrow_back_up_the_data_flow():
    assert arrows_up({"pluralrm.data.x": {"pluralrm.rewards.y"}}) == ["pluralrm.data.x -> pluralrm.rewards.y"]
    assert arrows_up({"pluralrm.serve.app": {"pluralrm.adapt", "pluralrm.config"}}) == []
    assert arrows_up(import_graph()) == []


def _module_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """(top-level name, line) of imports that run when the module is imported: not inside a function, not
    under ``if TYPE_CHECKING:``."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append(((node.module or "").split(".")[0], node.lineno))
        else:
            todo += list(ast.iter_child_nodes(node))
    return found


def test_the_import_reader_sees_module_level_imports_only():
    source = (
        "import torch.nn\nif TYPE_CHECKING:\n    import transformers\nclass A:\n    from torch import x\n"
        "def f():\n    import transformers\ntry:\n    import numpy\nexcept ImportError:\n    pass\n"
    )
    assert sorted(_module_level_imports(ast.parse(source))) == [("numpy", 9), ("torch", 1), ("torch", 5)]


def test_torch_is_imported_at_module_level_only_in_backbone_and_training():
    offenders = []
    for name, path in module_files().items():
        if package_of(name) in TORCH_HOMES:
            continue
        for top, line in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if top in TORCH:
                offenders.append(f"{path.relative_to(SRC.parent)}:{line} imports {top}")
    assert not offenders, "import it inside the function that runs the model:\n" + "\n".join(offenders)


def test_the_numpy_packages_import_without_torch():
    """What DESIGN promises: data, rewards, adapt (and what reads them) load no torch until a model runs."""
    code = (
        "import sys\n"
        "import pluralrm.data, pluralrm.backbone, pluralrm.rewards, pluralrm.rewards.reward_model\n"
        "import pluralrm.adapt, pluralrm.adapt.kshot, pluralrm.adapt.choice\n"
        "import pluralrm.select, pluralrm.evaluate\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
