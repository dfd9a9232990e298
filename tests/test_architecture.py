"""The package's layers: no import cycle, and no module imports one from a higher layer.

Function-local imports count too (a cycle hidden in a function is still a cycle)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "boxsup"

# Bottom-up, as in the README's architecture section: a module may import its own layer or lower ones.
LAYERS = [{"atomic"}, {"data"}, {"metrics"}, {"crf"}, {"proposals"}, {"config"}, {"models"}, {"predict"},
          {"labels"}, {"relabel"}, {"runs"}, {"pretrain"}, {"train"}, {"evaluate"}, {"experiments"}, {"label_quality"},
          {"results"}, {"paper", "paper_figures"}, {"sensitivity"}, {"figures"}, {"report"}, {"cli"}]


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            for t in targets:
                # the deepest module of the package that the import names
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod and t != "boxsup" and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def _layer(mod: str) -> int:
    top = mod.split(".")[1] if "." in mod else mod
    found = [i for i, layer in enumerate(LAYERS) if top in layer]
    assert found, f"module {mod} is in no layer: add it to LAYERS (and to the README)"
    return found[0]


def test_no_import_cycle():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()) or [])


def test_no_module_imports_a_higher_layer():
    bad = [f"{m} imports {n}" for m, deps in import_graph().items() if m != "boxsup"
           for n in deps if _layer(n) > _layer(m)]
    assert not bad, bad


def test_the_checker_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
