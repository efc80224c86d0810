"""The layers read downward (DESIGN.md "Layout"), the import graph has no circle, and no import hides in a function.

`__main__` -> train / export -> evaluate -> impute -> methods -> models, masking, losses, ops,
generate -> kernels; `data` serves every layer and imports none above it. Read from the
source with `ast` (nothing is imported, no jax): every `import` counts, the ones inside
functions included; `from mmjax.x import y` is the module `mmjax.x.y` when that is a module,
else `mmjax.x`; a package's `__init__` imports count as the package's.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmjax"

# The run level: what loads, trains, evaluates or exports runs. Nothing below may reach it.
RUN_LEVEL = ("mmjax.train", "mmjax.evaluate", "mmjax.export", "mmjax.impute", "mmjax.__main__")
# The layers below the run level (pure functions over params and batches).
LOWER = (
    "mmjax.methods",
    "mmjax.models",
    "mmjax.masking",
    "mmjax.ops",
    "mmjax.kernels",
    "mmjax.losses",
    "mmjax.parts",
    "mmjax.targets",
    "mmjax.generate",
    "mmjax.data",
    "mmjax.config",
    "mmjax.errors",
    "mmjax.files",
)
# importer prefixes -> prefixes they must not import (besides the run level).
BELOW = {
    # The trainer evaluates during a run (`eval.every_steps`) and declares `eval`; evaluation gets
    # trained runs from its caller, never by loading them itself.
    "mmjax.evaluate": ("mmjax.train", "mmjax.export", "mmjax.__main__"),
    "mmjax.kernels": ("mmjax.ops", "mmjax.models", "mmjax.methods", "mmjax.masking", "mmjax.generate", "mmjax.data"),
    "mmjax.ops": ("mmjax.methods", "mmjax.models", "mmjax.generate"),
    "mmjax.masking": ("mmjax.methods", "mmjax.models", "mmjax.generate"),
    "mmjax.models": ("mmjax.methods", "mmjax.generate"),
    "mmjax.losses": ("mmjax.methods", "mmjax.models"),
    "mmjax.parts": ("mmjax.methods", "mmjax.models", "mmjax.masking", "mmjax.ops", "mmjax.data"),
    "mmjax.targets": ("mmjax.methods", "mmjax.models", "mmjax.masking", "mmjax.data"),
    "mmjax.generate": ("mmjax.methods", "mmjax.models"),
    "mmjax.data": ("mmjax.methods", "mmjax.models", "mmjax.masking", "mmjax.generate"),
    "mmjax.config": ("mmjax.methods", "mmjax.models", "mmjax.data", "mmjax.ops", "mmjax.kernels"),
}

# Imports of mmjax modules inside functions, each with its reason: (importer, imported) -> reason.
# The CLI's are all lazy, on purpose: `mmjax.__main__` installs its SIGTERM catcher and parses
# flags before jax loads, and each command imports only what it needs.
CLI = "mmjax.__main__"
CLI_REASON = "the CLI installs its SIGTERM catcher and parses flags before jax loads"
FUNCTION_LEVEL = {
    ("mmjax.ops.attention", "mmjax.kernels"): "the Pallas kernels (jax.experimental.pallas, Mosaic lowerings) "
    "load only when attention_impl='pallas' asks for them",
    ("mmjax.ops.attention", "mmjax.kernels.reference"): "importing any kernels module loads the Pallas kernels "
    "(mmjax/kernels/__init__.py); the mask facts are needed only when a mask is built",
}


def reason(module: str, target: str) -> str | None:
    return CLI_REASON if module == CLI else FUNCTION_LEVEL.get((module, target))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def resolve(name: str) -> str:
    """`name` or its longest prefix that is a module of the package."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str, path: pathlib.Path) -> list[tuple[str, int, bool]]:
    """`(imported module, line, inside a function)` for every mmjax import of a file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "mmjax" or alias.name.startswith("mmjax."):
                        found.append((resolve(alias.name), child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: `from . import x` is in `package`, each further dot one up
                    parts = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                if base == "mmjax" or base.startswith("mmjax."):
                    for alias in child.names:
                        sub = f"{base}.{alias.name}"
                        found.append((sub if sub in MODULES else resolve(base), child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    bad = []
    for module, imports in graph.items():
        forbidden = []
        if any(within(module, p) for p in LOWER):
            forbidden += RUN_LEVEL
        for prefix, below in BELOW.items():
            if within(module, prefix):
                forbidden += below
        for target, line, _ in imports:
            hit = next((p for p in forbidden if within(target, p)), None)
            if hit is not None:
                bad.append(f"{module} (line {line}) imports {target}: {hit} is a layer above it")
    return bad


def find_cycle(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None."""
    edges = {m: sorted({t for t, _, _ in imports if t != m and t in graph}) for m, imports in graph.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := dfs(start)) is not None:
            return cycle
    return None


def hidden_imports(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    return [
        f"{module} (line {line}) imports {target} inside a function, and FUNCTION_LEVEL gives no reason"
        for module, imports in graph.items()
        for target, line, in_function in imports
        if in_function and reason(module, target) is None
    ]


def test_the_layers_read_downward():
    assert not (bad := layer_violations(GRAPH)), "\n".join(bad)


def test_the_import_graph_has_no_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_import_inside_a_function_has_a_reason():
    assert not (bad := hidden_imports(GRAPH)), "\n".join(bad)
    used = {(m, t) for m, imports in GRAPH.items() for t, _, inside in imports if inside}
    assert not (stale := sorted(set(FUNCTION_LEVEL) - used)), f"FUNCTION_LEVEL names imports that are gone: {stale}"


def planted(tmp_path: pathlib.Path, module: str, source: str) -> dict[str, list[tuple[str, int, bool]]]:
    """The graph with `module`'s imports replaced by those of `source`."""
    path = tmp_path / "planted.py"
    path.write_text(source)
    return {**GRAPH, module: imports_of(module, path)}


@pytest.mark.parametrize(
    "module, source, check",
    [
        ("mmjax.methods.mae", "def f():\n    from mmjax.train import load_trained\n", layer_violations),
        ("mmjax.kernels.flash", "import mmjax.ops.attention\n", layer_violations),
        ("mmjax.models.vit", "from mmjax.methods import mae\n", layer_violations),
        ("mmjax.data.kinds", "import mmjax.evaluate.protocols\n", layer_violations),
        ("mmjax.losses", "def f():\n    from mmjax.config import ConfigError\n", hidden_imports),
    ],
)
def test_a_planted_violation_is_caught(tmp_path, module, source, check):
    assert check(planted(tmp_path, module, source))


def test_a_planted_circle_is_caught(tmp_path):
    graph = planted(tmp_path, "mmjax.kernels.reference", "from mmjax.kernels import flash\n")
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "mmjax.kernels.reference" in cycle
