"""The package's imports run one way (DESIGN.md): a folder imports only its own or lower folders, and no
modules import each other round in a circle. Read from the source, function-level imports included."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "musicgen"
# lowest first; a module may import its own floor and those below it
FLOORS = [("errors",), ("config",), ("infra",), ("music",), ("families",), ("data",), ("runs",), ("learn",),
          ("analysis", "render"), ("services",), ("cli",), ("__main__",)]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(FLOORS) if top in names)


def imports(path: Path) -> set[str]:
    """The package modules `path` imports (a name imported from a package counts as its module when it is one)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("musicgen"):
            assert node.level == 0, f"{path.name}: relative import"
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                    (PACKAGE.parent / sub.replace(".", "/")).is_dir()
                out.add(sub if is_module else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("musicgen."))
    return {m for m in out if m != "musicgen"}


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in root.rglob("*.py")}


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b}" for a, bs in edges.items() for b in bs if floor(b) > floor(a)]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_floor():
    assert all(floor(m) >= 0 for m in graph() if m != "musicgen")


def test_no_import_runs_back_up():
    assert upward(graph()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


def test_the_library_never_imports_the_ui():
    for path in PACKAGE.rglob("*.py"):
        names = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names}
        assert not names & {"streamlit", "shell", "widgets"}, path


def test_the_check_sees_an_import_turned_back_up(tmp_path):
    """The check itself: a music module that imports the trainer is caught, and so is a circle."""
    edges = graph()
    edges["musicgen.music.notes"] = edges["musicgen.music.notes"] | {"musicgen.learn.train"}
    assert "musicgen.music.notes -> musicgen.learn.train" in upward(edges)
    edges["musicgen.music.theory"] = edges["musicgen.music.theory"] | {"musicgen.music.grid"}
    assert any({"musicgen.music.grid", "musicgen.music.theory"} <= set(c) for c in circles(edges))
