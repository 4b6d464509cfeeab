"""Every cross-reference to a ``neuroaikit`` name in the docstrings and the guides points at
something the API reference documents.

Sphinx renders a reference it cannot resolve as plain text and says nothing (``conf.py`` does
not set ``nitpicky``, which would also flag every torch and numpy type), so a function spelled
with its defining module (``neuroaikit.attacks.evaluate.evaluate_run``) where the reference
documents the package path (``neuroaikit.attacks.evaluate_run``), or a module without a page,
silently loses its link. (Autodoc also registers a class under its defining module, but one
spelling for every kind of name is simpler to keep right.) This test reads the same table the
reference is generated from (``docs/_ext/apigen.py``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from docs_extensions import docs_extension

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "neuroaikit"
# written by the build (API, CLI, results pages, gallery): they link what they generate
GENERATED = ("_build", "api", "cli", "auto_examples", "generated")
ROLES = "class|func|mod|meth|attr|data|obj|exc|const"
# :class:`~neuroaikit.x.Y`, :py:func:`title <neuroaikit.x.f>`, :mod:`.sibling` (rST, in docstrings)
RST_ROLE = re.compile(rf":(?:py:)?({ROLES}):`([^`]+)`")
# {py:class}`neuroaikit.x.Y`, {func}`~neuroaikit.x.f` (MyST, in the Markdown pages)
MYST_ROLE = re.compile(rf"\{{(?:py:)?({ROLES})\}}`([^`]+)`")


def _apigen():
    return docs_extension("apigen")


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    return "function" if inspect.isroutine(obj) else "object"


def _attributes_section(doc: str) -> set[str]:
    """The names an ``Attributes:`` section of a class docstring lists (napoleon documents them)."""
    section = re.search(r"^Attributes:\n((?:[ \t]+.*\n?|\n)+)", doc, re.MULTILINE)
    if section is None:
        return set()
    indent = min(len(line) - len(line.lstrip()) for line in section.group(1).splitlines() if line.strip())
    return {m.group(1) for m in re.finditer(rf"^ {{{indent}}}(\w+)\s*(?:\(.*\))?:", section.group(1), re.MULTILINE)}


def documented() -> dict[str, str]:
    """Every target the API reference defines, with its kind (``module`` for a page, ``class``,
    ``function`` or ``object``): an object on the page that documents it, or a public member of
    such a class that autodoc shows (it skips a member without a docstring: no ``undoc-members``)."""
    targets = {}
    for page in _apigen().collect():
        targets[page.module] = "module"
        module = importlib.import_module(page.module)
        for name in page.names:
            if not page.canonical[name]:
                continue  # linked to the page that documents it, under that page's name
            obj = getattr(module, name)
            targets[f"{page.module}.{name}"] = _kind(obj)
            if inspect.isclass(obj):
                listed = _attributes_section(inspect.getdoc(obj) or "")
                for member, value in vars(obj).items():
                    shown = member in listed or inspect.getdoc(getattr(obj, member, value))
                    if not member.startswith("_") and shown:
                        targets[f"{page.module}.{name}.{member}"] = _kind(getattr(obj, member, value))
    return targets


def _docstrings(path: Path):
    """(line, text) of every string statement of a module: the docstrings of the module, its
    classes and functions, and the attribute docstrings that autodoc also reads."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            yield node.lineno, node.value.value


def references() -> list[tuple[str, str, str]]:
    """(where, role, target) of every reference to a ``neuroaikit`` name, absolute or relative
    (``.module.name``), in the package's docstrings and the hand-written documentation pages."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for line, text in _docstrings(path):
            found += [(f"{path.relative_to(ROOT)}:{line + text.count(chr(10), 0, m.start())}", *m.groups())
                      for m in RST_ROLE.finditer(text)]
    for path in sorted(DOCS.rglob("*.md")):
        if any(part in GENERATED for part in path.relative_to(DOCS).parts):
            continue
        for line, text in enumerate(path.read_text().splitlines(), 1):
            found += [(f"{path.relative_to(ROOT)}:{line}", *m.groups()) for m in MYST_ROLE.finditer(text)]
    refs = []
    for where, role, text in found:
        target = re.sub(r"\s+", "", text.rsplit("<", 1)[1].rstrip(">") if text.endswith(">") else text)
        if target.startswith("!"):
            continue  # asked not to link
        target = target.lstrip("~")
        if target.startswith(("neuroaikit.", ".")) or target == "neuroaikit":
            refs.append((where, role, target))
    return refs


#: the kinds of object a role links to when Sphinx searches for a relative target by its type
ROLE_KINDS = {"mod": {"module"}, "class": {"class"}, "exc": {"class"}, "func": {"function"},
              "meth": {"function"}, "attr": {"object"}, "data": {"object"}, "const": {"object"},
              "obj": {"module", "class", "function", "object"}}


def resolves(role: str, target: str, targets: dict[str, str]) -> bool:
    """Whether Sphinx links it: an absolute target by its name alone (any object but a module
    for a non-``mod`` role); a relative one (``.name``) by a documented name that ends with it and
    is of the role's kind, the last search Sphinx makes for such a reference."""
    if target.startswith("."):
        wanted = ROLE_KINDS.get(role, ROLE_KINDS["obj"])
        return any(name.endswith(target) and kind in wanted for name, kind in targets.items())
    kind = targets.get(target)
    return kind is not None and ((kind == "module") == (role == "mod") or role == "obj")


def test_the_scan_finds_references_of_every_form():
    text = (":class:`~neuroaikit.a.B`, :py:func:`f <neuroaikit.a.f>`, :mod:`.sibling`, :func:`!neuroaikit.x`,"
            " :class:`Bare`")
    forms = [(m.group(1), m.group(2)) for m in RST_ROLE.finditer(text)]
    assert forms == [("class", "~neuroaikit.a.B"), ("func", "f <neuroaikit.a.f>"), ("mod", ".sibling"),
                     ("func", "!neuroaikit.x"), ("class", "Bare")]
    assert MYST_ROLE.findall("{py:mod}`neuroaikit.a` and {func}`~neuroaikit.a.f`") == [
        ("mod", "neuroaikit.a"), ("func", "~neuroaikit.a.f")]
    targets = {"neuroaikit.a": "module", "neuroaikit.a.B": "class", "neuroaikit.a.B.fit": "function",
               "neuroaikit.a.f": "function"}
    assert resolves("class", "neuroaikit.a.B", targets) and resolves("meth", ".B.fit", targets)
    assert not resolves("class", ".f", targets) and resolves("func", ".f", targets)  # Sphinx checks a relative one's kind
    assert not resolves("class", "neuroaikit.a.base.B", targets)  # the defining module's spelling
    assert not resolves("mod", "neuroaikit.a.B", targets) and not resolves("class", "neuroaikit.a", targets)
    assert resolves("obj", "neuroaikit.a", targets)


def test_a_member_autodoc_does_not_show_is_no_target():
    class Documented:
        """A class.

        Attributes:
            listed: shown by napoleon.
            typed (int): shown too.
        """

        listed = None
        typed = 0

        def shown(self):
            """Has a docstring."""

        def hidden(self):
            pass

    assert _attributes_section(inspect.getdoc(Documented)) == {"listed", "typed"}
    assert _kind(Documented.shown) == "function" and inspect.getdoc(Documented.hidden) is None


def test_every_reference_to_a_neuroaikit_name_is_documented():
    targets = documented()
    refs = references()
    assert len(refs) > 100  # the scan sees the docstrings' references
    broken = sorted(f"{target} ({role}) <- {where}" for where, role, target in refs
                    if not resolves(role, target, targets))
    assert not broken, f"{len(broken)} references that the API reference does not define:\n" + "\n".join(broken)


def test_a_constant_is_documented_under_its_page_name():
    """The page's ``automodule`` sets the current module, which Sphinx prefixes to a ``py:data``
    name: the directive names the constant alone, or it is registered as ``module.module.NAME``
    and every :data: reference to it goes unlinked."""
    apigen = _apigen()
    page = next(p for p in apigen.collect() if p.module == "neuroaikit.certify.sensitivity")
    text = apigen.render(page)
    assert ".. py:data:: SUPPORTED\n" in text
    assert ".. py:data:: neuroaikit." not in text
