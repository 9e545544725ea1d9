"""The shape of the code: layers point down (DESIGN.md's "may import" column), no import circle."""

from __future__ import annotations

import ast

from models.settings import PROJECT_ROOT

PACKAGES = ("models", "notifications", "flows", "web", "cli")
MAY_IMPORT = {
    "models": {"models"},
    "notifications": {"models", "notifications"},
    "flows": {"models", "notifications", "flows"},
    "web": {"models", "notifications", "flows", "web"},
    "cli": set(PACKAGES),
}


def import_graph() -> dict[str, set[str]]:
    """Each module of ours and the modules of ours it imports (anywhere in the file)."""
    modules = {
        ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts): path
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def test_every_package_imports_only_the_layers_below_it():
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    ]
    assert wrong == []


def test_no_module_imports_a_module_that_imports_it_back():
    graph = import_graph()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            module, path = stack.pop()
            for target in graph[module]:
                if target == start:
                    circles.append(" -> ".join([*path, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    assert circles == []


def test_the_graph_is_read_at_all():
    graph = import_graph()
    assert "web.deps" in graph["web.pages"] and "models.actions" in graph["web.action"]
