"""Generate the API reference from the package itself: one page per module that declares
``__all__`` (every subpackage), plus the workflow-core modules, so that a new subpackage or a
renamed function needs no edit to the documentation.

Each public object is documented once, on the page of the module that is the longest prefix
of its ``__module__`` (where it is defined, or the package that owns it); every other page that
re-exports it links there. A constant has no ``__module__``: a package that re-exports one of its
submodules' constants links to the most specific page that exports it (where it is defined).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "neuroaikit"
# the workflow core: modules every capability builds on; documented even without ``__all__``
CORE_MODULES = ("config", "runs", "execution", "progress", "results", "stats", "errors", "io")
SKIP = ("__main__",)


@dataclass
class ApiPage:
    module: str
    names: list[str]
    summary: str = ""
    canonical: dict[str, bool] = field(default_factory=dict)  # name -> documented here (else linked)
    targets: dict[str, str] = field(default_factory=dict)  # name -> full dotted target


def _public_names(module) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
            and (inspect.isclass(obj) or inspect.isfunction(obj))]


def collect() -> list[ApiPage]:
    """Every documented module with its public names, and where each object is documented."""
    root = importlib.import_module(PACKAGE)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, PACKAGE + "."):
        if info.name.rsplit(".", 1)[-1] in SKIP or ".cli" in info.name or ".sections" in info.name:
            continue
        module = importlib.import_module(info.name)
        short = info.name[len(PACKAGE) + 1:]
        if hasattr(module, "__all__") or short in CORE_MODULES:
            modules.append(module)
    pages = [ApiPage(m.__name__, _public_names(m), (inspect.getdoc(m) or "").split("\n\n")[0].replace("\n", " "))
             for m in modules]
    by_name = {p.module: p for p in pages}
    owners: dict[int, tuple[str, str]] = {}  # id(object) -> (owning module, name)
    for page in pages:
        module = importlib.import_module(page.module)
        for name in page.names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isroutine(obj)):
                continue  # constants are placed page by page, below
            home = getattr(obj, "__module__", "") or ""
            candidates = [p.module for p in pages if name in p.names and getattr(
                importlib.import_module(p.module), name, None) is obj
                and (home == p.module or home.startswith(p.module + "."))]
            owner = max(candidates, key=len) if candidates else page.module
            owners.setdefault(id(obj), (owner, name))
    for page in pages:
        module = importlib.import_module(page.module)
        for name in page.names:
            obj = getattr(module, name)
            owner, owner_name = owners.get(id(obj), (page.module, name))
            if id(obj) not in owners and not inspect.ismodule(obj):
                owner = _constant_owner(page, name, obj, pages)
            page.canonical[name] = owner == page.module
            page.targets[name] = f"{owner}.{owner_name}"
    return [by_name[p.module] for p in pages]


def _constant_owner(page: ApiPage, name: str, obj, pages: list[ApiPage]) -> str:
    """The page that documents a constant ``page`` exports: the most specific of this page and
    its submodules' pages that export the same object under the same name. Only submodules count,
    because equal small values (an interned string, a small int) are the same object in modules
    that have nothing to do with each other."""
    candidates = [p.module for p in pages
                  if (p.module == page.module or p.module.startswith(page.module + "."))
                  and name in p.names and getattr(importlib.import_module(p.module), name, None) is obj]
    return max(candidates, key=len)


def documented_classes(pages: list[ApiPage]) -> set[type]:
    """The classes the reference documents: every class on the page that owns it."""
    found = set()
    for page in pages:
        module = importlib.import_module(page.module)
        found |= {getattr(module, name) for name in page.names
                  if page.canonical[name] and inspect.isclass(getattr(module, name))}
    return found


def shown_bases(bases: list, documented: set[type]) -> list:
    """The bases to show for a class: a neuroaikit base the reference does not document (private,
    or not exported) has no page to link to, so its own bases stand in for it, recursively
    (``object`` when nothing else is left)."""
    def expand(classes: list) -> list:
        shown: list = []
        for base in classes:
            hidden = (isinstance(base, type) and base not in documented
                      and (base.__module__ == PACKAGE or base.__module__.startswith(PACKAGE + ".")))
            for kept in expand([b for b in base.__bases__ if b is not object]) if hidden else [base]:
                if kept not in shown:
                    shown.append(kept)
        return shown

    return (expand(bases) or [object]) if bases else []


def _directive(module_name: str, name: str) -> str:
    obj = getattr(importlib.import_module(module_name), name)
    target = f"{module_name}.{name}"
    if inspect.isclass(obj):
        return f".. autoclass:: {target}\n   :members:\n"
    if inspect.isfunction(obj) or inspect.isroutine(obj):
        return f".. autofunction:: {target}\n"
    # the page's automodule is the current module, which Sphinx prefixes to a data name: a full
    # name here would be registered (and linked) as "module.module.NAME"
    return f".. py:data:: {name}\n   :type: {type(obj).__name__}\n\n   {_describe(obj)}\n"


def _describe(obj) -> str:
    """One line for a constant: its keys or values (registries, option lists), else its value."""
    if isinstance(obj, dict):
        items = ", ".join(f"``{k}``" for k in list(obj)[:20])
        return f"Registry or table with the keys {items}" + (" ..." if len(obj) > 20 else "") + "."
    if isinstance(obj, (tuple, list, set, frozenset)) and all(isinstance(v, (str, int, float)) for v in obj):
        return "Values: " + ", ".join(f"``{v!r}``" for v in obj) + "."
    if isinstance(obj, (str, int, float, bool)):
        return f"Value: ``{obj!r}``."
    return f"A ``{type(obj).__name__}``."


def render(page: ApiPage) -> str:
    title = page.module
    lines = [title, "=" * len(title), "", f".. automodule:: {page.module}", "   :no-members:", ""]
    module = importlib.import_module(page.module)
    submodules = [n for n in page.names if inspect.ismodule(getattr(module, n))]
    local = [n for n in page.names if page.canonical[n] and n not in submodules]
    linked = [n for n in page.names if not page.canonical[n]]
    if submodules:  # a module exported by name is documented on its own page, not as a constant
        lines += ["Modules exported here:", ""]
        lines += [f"- :py:mod:`{getattr(module, name).__name__}`" for name in submodules]
        lines.append("")
    if linked:
        lines += ["Also exported here (documented where they are defined):", ""]
        lines += [f"- :py:obj:`{name} <{page.targets[name]}>`" for name in linked]
        lines.append("")
    for name in local:
        lines.append(_directive(page.module, name))
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    # unchanged pages keep their timestamps, so incremental builds stay incremental
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(out: Path) -> list[ApiPage]:
    """Write ``out/<module>.rst`` for every page and ``out/index.rst``; remove stale pages."""
    out.mkdir(parents=True, exist_ok=True)
    pages = collect()
    wanted = {f"{p.module}.rst" for p in pages} | {"index.rst"}
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for page in pages:
        _write(out / f"{page.module}.rst", render(page))
    index = ["API reference", "=============", "",
             "Generated from the docstrings on every build: one page per package (its ``__all__``) and per",
             "module of the workflow core.", "",
             ".. list-table::", "   :header-rows: 1", "", "   * - module", "     - summary"]
    for page in pages:
        # the summary is the module docstring's first paragraph: its relative references (a bare
        # :class:`Strategy`) resolve against that module, as they do on the module's own page
        index += [f"   * - :doc:`{page.module}`", f"     - .. py:currentmodule:: {page.module}", "",
                  f"       {page.summary or ''}"]
    index += ["", ".. py:currentmodule:: None", "", ".. toctree::", "   :hidden:", ""]
    index += [f"   {p.module}" for p in pages]
    _write(out / "index.rst", "\n".join(index) + "\n")
    return pages
