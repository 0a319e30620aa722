"""The audit modules import one another in one direction only (no cycle, not even inside a
function): chain <- walk <- checkpoints <- verification, evidence, witness."""

from __future__ import annotations

import ast
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"
AUDIT = {
    "audit_chain",
    "audit_walk",
    "audit_verify",
    "audit_witness",
    "checkpoints",
    "evidence",
    "merkle",
    "sealing",
}


def imports_of(module: str) -> set[str]:
    """The audit modules ``module`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse((INFRA / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "infra":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("infra."):
                found.add(node.module.removeprefix("infra."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("infra.") for a in node.names if a.name.startswith("infra.")
            }
    return found & AUDIT


def test_the_audit_modules_form_no_import_cycle() -> None:
    graph = {module: imports_of(module) for module in AUDIT}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph[module]:
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    assert "audit_verify" not in set().union(*(graph[m] for m in graph if m != "audit_verify"))
