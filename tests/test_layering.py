"""The package layering of docs/architecture.md, checked on the source (imports inside functions included).

    cli ─▶ stages ─▶ store / encoders / video / datasets / eval ─▶ runtime / errors / provenance

An import may point sideways inside a layer or down, never up, and the package graph has no cycle.
"""

import ast
from pathlib import Path

import rosetta_cli

ROOT = Path(rosetta_cli.__file__).parent
LAYER = {
    "cli": 3,
    "extract": 2, "rst": 2, "mining": 2, "contrastive": 2, "bench": 2, "demo": 2, "claims": 2, "workspace": 2,
    "toy": 2, "synthetic": 2, "search": 2,
    "store": 1, "encoders": 1, "video": 1, "datasets": 1, "eval": 1,
    "runtime": 0, "errors": 0, "provenance": 0, "__init__": 0, "__main__": 3,
}


def package_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def import_edges(root: Path = ROOT) -> set[tuple[str, str, str]]:
    """(importing package, imported package, file) for every `rosetta_cli.*` import under root."""
    edges = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        src = rel.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"rosetta_cli.{a.name}" for a in node.names if node.module == "rosetta_cli"
                                         and ((root / a.name).is_dir() or (root / f"{a.name}.py").is_file())]
            for n in names:
                if n.startswith("rosetta_cli.") and (dst := package_of(n)) != src:
                    edges.add((src, dst, str(rel)))
    return edges


def test_every_package_has_a_layer():
    packages = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert packages - set(LAYER) == set(), "add new packages to LAYER and docs/architecture.md"


def test_no_import_points_up():
    up = sorted(f"{f}: {s} (layer {LAYER[s]}) imports {d} (layer {LAYER[d]})"
                for s, d, f in import_edges() if LAYER[d] > LAYER[s])
    assert up == []


def test_package_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for s, d, _ in import_edges():
        graph.setdefault(s, set()).add(d)
    done, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n):] + [n])
            return
        if n in done:
            return
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            visit(m)
        stack.pop()
        done.add(n)

    for n in sorted(graph):
        visit(n)
    assert cycles == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself, on a planted tree: store → cli is seen (so the tests above can fail)."""
    (tmp_path / "store").mkdir()
    (tmp_path / "cli").mkdir()
    (tmp_path / "store" / "ops.py").write_text("def f():\n    from rosetta_cli.cli.common import console\n")
    (tmp_path / "cli" / "app.py").write_text("from rosetta_cli import store\n")
    assert import_edges(tmp_path) == {("store", "cli", "store/ops.py"), ("cli", "store", "cli/app.py")}
