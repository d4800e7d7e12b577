"""The package layering DESIGN.md describes, checked on every module's imports (ast):

cli > components (apiserver, kubelet, proxy, controllers, scheduler, dns, ...) > api >
apimachinery, storage, client. A module imports only from its own package or a lower
layer; components never import each other; and no modules import each other in a
circle (function-level imports count: they are cycles the interpreter merely defers).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "k8py"
TOP, COMPONENTS, API, BOTTOM = 3, 2, 1, 0
LAYERS = {"cli": TOP, "__main__": TOP, "api": API, "apimachinery": BOTTOM, "storage": BOTTOM,
          "client": BOTTOM, "__init__": BOTTOM}


def layer(package: str) -> int:
    return LAYERS.get(package, COMPONENTS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every k8py module `path` imports, at any depth of the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import module` names a module; `from module import name` names the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found += [(node.lineno, t) for t in dict.fromkeys(targets) if t == "k8py" or t.startswith("k8py.")]
    return found


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_layers_import_only_downwards_and_components_not_each_other():
    known = set(modules())
    wrong = []
    for name, path in modules().items():
        own = top_package(name)
        for line, target in imported(path, known):
            other = top_package(target)
            if other == own:
                continue
            if layer(other) > layer(own) or layer(other) == layer(own) == COMPONENTS:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def import_cycles() -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan's algorithm)."""
    known = set(modules())
    graph = {name: sorted({t for _, t in imported(path, known) if t in known and t != name})
             for name, path in modules().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return cycles


def test_no_modules_import_each_other_in_a_circle():
    assert import_cycles() == []


def test_the_checks_see_what_they_should(tmp_path):
    # The walker resolves `from pkg import module` to the module, and counts imports inside functions.
    source = PACKAGE / "apiserver" / "strategy.py"
    targets = {t for _, t in imported(source, set(modules()))}
    assert "k8py.apiserver.admission" in targets and "k8py.api.registry" in targets
    assert layer("kubelet") == layer("apiserver") == COMPONENTS and layer("api") > layer("apimachinery")
