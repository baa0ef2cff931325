"""The layout the code promises (DESIGN 1, STYLE): no import cycle, layers that only look down, a quick CLI.

Imports are read from the source with :mod:`ast`, those inside functions
included, so a cycle hidden in a lazy import is found too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feblam", "matchers", "sources", "sinks", "flows", "gateway", "bench")
#: The packages of the job's data path; none of them may import the gateway or the CLI.
JOB = ("matchers", "sources", "sinks", "flows")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The production modules ``path`` imports anywhere in its body (a name imported from a package counts
    as its module when it is one)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # annotations only: no import at run time, no cycle
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) for name, path in files.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
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

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_production_packages() -> None:
    assert cycles(graph()) == []


def test_the_job_never_imports_the_gateway_or_the_cli() -> None:
    g = graph()
    bad = sorted(
        f"{m} imports {d}"
        for m, deps in g.items()
        if m.split(".")[0] in (*JOB, "feblam") and m != "feblam.cli"
        for d in deps
        if d.split(".")[0] == "gateway" or d == "feblam.cli"
    )
    assert bad == []


def test_the_gateway_package_holds_the_flow_cases_board_and_console() -> None:
    g = graph()
    for module in ("gateway.flow", "gateway.cases", "gateway.board", "gateway.console", "gateway.console.app"):
        assert module in g, module
    assert not any(m.startswith(("flows.gateway", "flows.cases", "sinks.board", "sinks.console")) for m in g)


def test_help_imports_no_benchmark_code() -> None:
    code = (
        "import sys\n"
        "from feblam.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bench', 'psutil', 'gateway', 'flows', 'matchers')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "['bench', 'bench.rows']"
