"""The package layering of docs/architecture.md, checked on the source (imports inside functions included).

    cli ─▶ pipeline / demo / claims / workspace ─▶ stages ─▶ store / encoders / video / datasets / eval / reports
        ─▶ runtime / errors / provenance

An import may point sideways inside a layer or down, never up; neither the package graph nor the module
graph has a cycle (an import inside a function counts: it hides a circle, it does not break it).
"""

import ast
from pathlib import Path

import rosetta_cli

ROOT = Path(rosetta_cli.__file__).parent
LAYER = {
    "cli": 4, "__main__": 4,
    "pipeline": 3, "demo": 3, "claims": 3, "workspace": 3,
    "extract": 2, "rst": 2, "mining": 2, "contrastive": 2, "bench": 2, "toy": 2, "synthetic": 2, "search": 2,
    "store": 1, "encoders": 1, "video": 1, "datasets": 1, "eval": 1, "reports": 1,
    "runtime": 0, "errors": 0, "provenance": 0, "__init__": 0,
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


def module_of(path: Path, root: Path) -> str:
    """rosetta_cli.a.b for root/a/b.py (a package is its __init__: rosetta_cli.a)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(("rosetta_cli",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def module_edges(root: Path = ROOT) -> set[tuple[str, str]]:
    """(importing module, imported module) for every `rosetta_cli.*` import under root, inside functions too.

    `from rosetta_cli.a import b` imports module a.b when root/a/b.py (or a package a/b) exists, else
    module a (b is a name in it); relative imports are resolved against the importing module."""
    mods = {module_of(p, root) for p in root.rglob("*.py")}
    edges = set()
    for path in root.rglob("*.py"):
        src = module_of(path, root)
        pkg = src if path.name == "__init__.py" else src.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    targets.append(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
            for t in targets:
                while t and t not in mods:  # `import rosetta_cli.a.b.c` where c is a name: module a.b
                    t = t.rpartition(".")[0]
                if t.startswith("rosetta_cli") and t != src:
                    edges.add((src, t))
    return edges


def cycles_of(edges) -> list[list[str]]:
    """The cycles a depth-first search meets in the directed graph `edges` (none: [])."""
    graph: dict[str, set[str]] = {}
    for s, d in edges:
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
    return cycles


def test_every_package_has_a_layer():
    packages = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert packages - set(LAYER) == set(), "add new packages to LAYER and docs/architecture.md"


def test_no_import_points_up():
    up = sorted(f"{f}: {s} (layer {LAYER[s]}) imports {d} (layer {LAYER[d]})"
                for s, d, f in import_edges() if LAYER[d] > LAYER[s])
    assert up == []


def test_package_graph_has_no_cycle():
    assert cycles_of((s, d) for s, d, _ in import_edges()) == []


def test_module_graph_has_no_cycle():
    """A package's __init__ re-exporting its modules is not a circle: a module importing its own package's
    __init__ is left out (it loads the package's public names, which Python resolves before the module)."""
    edges = {(s, d) for s, d in module_edges() if not s.startswith(d + ".")}
    assert cycles_of(edges) == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself, on a planted tree: store → cli is seen (so the tests above can fail)."""
    (tmp_path / "store").mkdir()
    (tmp_path / "cli").mkdir()
    (tmp_path / "store" / "ops.py").write_text("def f():\n    from rosetta_cli.cli.common import console\n")
    (tmp_path / "cli" / "app.py").write_text("from rosetta_cli import store\n")
    assert import_edges(tmp_path) == {("store", "cli", "store/ops.py"), ("cli", "store", "cli/app.py")}


def test_the_checker_sees_a_module_circle_hidden_in_a_function(tmp_path):
    """report → plots at the top, plots → report inside a function: a circle (the bench/ one of issue #30)."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__init__.py").write_text("")
    (tmp_path / "bench" / "report.py").write_text("from rosetta_cli.bench import plots\n")
    (tmp_path / "bench" / "plots.py").write_text("def f():\n    from rosetta_cli.bench.report import columns\n")
    (tmp_path / "bench" / "run.py").write_text("from . import report\nimport rosetta_cli.bench.plots\n")
    edges = module_edges(tmp_path)
    assert edges == {("rosetta_cli.bench.report", "rosetta_cli.bench.plots"),
                     ("rosetta_cli.bench.plots", "rosetta_cli.bench.report"),
                     ("rosetta_cli.bench.run", "rosetta_cli.bench.report"),
                     ("rosetta_cli.bench.run", "rosetta_cli.bench.plots")}
    assert cycles_of(edges) == [["rosetta_cli.bench.plots", "rosetta_cli.bench.report", "rosetta_cli.bench.plots"]]
