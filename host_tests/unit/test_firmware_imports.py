"""The firmware's import graph: no circle among firmware modules, and arrows only down the layers (app → loader →
lib). Every import counts, those at the top of a module and those deferred into functions alike (read with ast,
nothing is imported): a deferred import may save RAM or start-up time, but it must never be what keeps a circle
from failing at import."""

from __future__ import annotations

import ast
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
# The loader's hand-off: startup runs the app it found in the slot (`import app.main` inside run()). That is the
# loader starting the app, not the loader using app code, so it is the one arrow allowed upwards.
HAND_OFF = {("loader.startup", "app.main")}


def modules(root: Path = FIRMWARE) -> dict[str, Path]:
    """Module name -> file, as a board sees them: lib/ files top-level, loader/ and app/ packages, boot and main."""
    out = {p.stem: p for p in (root / "lib").glob("*.py")}
    for pkg in ("loader", "app"):
        for p in (root / pkg).glob("*.py"):
            out[pkg if p.stem == "__init__" else f"{pkg}.{p.stem}"] = p
    for top in ("boot", "main"):
        if (root / f"{top}.py").exists():
            out[top] = root / f"{top}.py"
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The firmware modules `path` imports anywhere in it (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    found.add(a.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in known:  # from loader import staging: the submodule
                    found.add(sub)
                elif node.module in known:  # from loader import LOADER_API, from loader.staging import STAGING
                    found.add(node.module)
    return found


def graph(root: Path = FIRMWARE) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer(name: str) -> str:
    if name in ("boot", "main"):
        return "stage0"
    if name == "loader" or name.startswith("loader."):
        return "loader"
    if name == "app" or name.startswith("app."):
        return "app"
    return "lib"


# what each layer may import: nothing above it
ALLOWED = {"lib": {"lib"}, "loader": {"loader", "lib"}, "app": {"app", "loader", "lib"},
           "stage0": {"loader", "lib"}}


def upward(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, deps in g.items() for b in deps
                  if layer(b) not in ALLOWED[layer(a)] and (a, b) not in HAND_OFF)


def test_the_graph_sees_every_layer_and_deferred_imports():
    g = graph()
    assert {"cbor", "loader.update", "loader.staging", "app.main"} <= set(g)
    assert "loader.loaders" in g["loader.update"]  # imported inside confirm(): deferred imports are read too
    assert "loader.install" in g["loader.startup"] and "loader.bundle" in g["loader.install"]
    assert "app.main" in g["loader.startup"]


def test_no_circle_among_firmware_modules():
    assert circles(graph()) == []


def test_arrows_point_down_the_layers():
    assert upward(graph()) == []


def test_the_checks_catch_a_circle_and_an_upward_arrow():
    g = {"loader.a": {"loader.b"}, "loader.b": {"loader.c"}, "loader.c": {"loader.a"}, "cbor": {"loader.store"},
         "loader.d": {"app.x"}, "app.x": set(), "loader.store": set()}
    assert circles(g) == [["loader.a", "loader.b", "loader.c"]]
    assert upward(g) == [("cbor", "loader.store"), ("loader.d", "app.x")]
