"""Every cross-reference to a ``neuroaikit`` name in the docstrings and the guides points at
something the API reference documents.

Without ``nitpicky`` Sphinx renders a reference it cannot resolve as plain text and says nothing,
so a function spelled with its defining module (``neuroaikit.attacks.evaluate.evaluate_run``)
where the reference documents the package path (``neuroaikit.attacks.evaluate_run``), or a
module without a page, silently loses its link. ``conf.py`` sets ``nitpicky``, so ``make docs``
fails on such a reference; these tests find most of them in seconds, without a build, and check
that ``conf.py``'s ``nitpick_ignore_regex`` (the names of other projects, which cannot resolve
offline) ignores no neuroaikit name. (Autodoc also registers a class under its defining module,
but one spelling for every kind of name is simpler to keep right.) They read the same table the
reference is generated from (``docs/_ext/apigen.py``).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import typing
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


#: scikit-learn's generated metadata-routing methods, which docs/conf.py leaves out
SKLEARN_ROUTING = re.compile(r"set_\w+_request")


def _documented_objects():
    """(target, object, raw member) of everything the API reference documents: each page's
    module, an object on the page that documents it, or a public member of such a class that
    autodoc shows (it skips a member without a docstring: no ``undoc-members``)."""
    for page in _apigen().collect():
        module = importlib.import_module(page.module)
        yield page.module, module, module
        for name in page.names:
            if not page.canonical[name]:
                continue  # linked to the page that documents it, under that page's name
            obj = getattr(module, name)
            yield f"{page.module}.{name}", obj, obj
            if inspect.isclass(obj):
                listed = _attributes_section(inspect.getdoc(obj) or "")
                for member, value in vars(obj).items():
                    shown = member in listed or inspect.getdoc(getattr(obj, member, value))
                    if not member.startswith("_") and shown and not SKLEARN_ROUTING.fullmatch(member):
                        yield f"{page.module}.{name}.{member}", getattr(obj, member, value), value


def documented() -> dict[str, str]:
    """Every target the API reference defines, with its kind (``module`` for a page, ``class``,
    ``function`` or ``object``)."""
    return {target: _kind(obj) for target, obj, _ in _documented_objects()}


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


def _nitpick_ignore() -> list[tuple[str, str]]:
    """``conf.py``'s ``nitpick_ignore_regex``, read without running ``conf.py`` (which sets up the
    build: it writes the generated pages and changes ``sys.path`` and the environment)."""
    values = {node.targets[0].id: node.value for node in ast.parse((DOCS / "conf.py").read_text()).body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert ast.literal_eval(values["nitpicky"]) is True
    return ast.literal_eval(values["nitpick_ignore_regex"])


def _ignored(patterns: list[tuple[str, str]], role: str, target: str) -> bool:
    """Whether Sphinx skips the warning for an unresolved ``target``: it full-matches both."""
    return any(re.fullmatch(kind, f"py:{role}") and re.fullmatch(name, target) for kind, name in patterns)


def _spellings(targets) -> set[str]:
    """Every way a reference may write a documented name: in full, relative to a page, or bare."""
    return {".".join(parts[i:]) for target in targets for parts in [target.split(".")] for i in range(len(parts))}


def test_nitpicky_ignores_other_projects_names_and_no_neuroaikit_name():
    patterns = _nitpick_ignore()
    for outside in ("torch.nn.Module", "torch.nn.modules.module.Module", "nn.Module", "numpy.ndarray", "int",
                    "sklearn.base.BaseEstimator", "sequence"):
        assert _ignored(patterns, "class", outside), outside
    spellings = _spellings(documented())
    assert {"Run", "Config", "neuroaikit.runs.Run"} <= spellings
    ignored = sorted(name for name in spellings if _ignored(patterns, "obj", name))
    assert not ignored, f"conf.py's nitpick_ignore_regex would hide a broken reference to {ignored}"


#: how Sphinx splits a field's type into the names it links (sphinx.domains.python's delimiters)
TYPE_DELIMITERS = re.compile(r"(\s*[\[\]\(\),](?:\s*o[rf]\s)?\s*|\s+o[rf]\s+|\s*\|\s*|\.\.\.)")
#: a field's type as napoleon writes it: ``:type x:``, ``:vartype x:``, ``:rtype:``, an attribute's ``:type:``
TYPE_FIELD = re.compile(r"^\s*:(?:type|vartype) [^:]+:\s*(.*)$|^\s*:(?:rtype|type):\s*(.*)$", re.MULTILINE)


def _attribute_comments(cls) -> dict[str, str]:
    """The ``#:`` comments autodoc shows for a class's attributes: its own, and those of a base
    for an attribute the class sets again (``result_name``)."""
    from sphinx.pycode import ModuleAnalyzer

    found: dict[str, str] = {}
    for base in cls.__mro__:
        if not base.__module__.startswith("neuroaikit"):
            continue
        for (owner, name), lines in ModuleAnalyzer.for_module(base.__module__).find_attr_docs().items():
            if owner == base.__qualname__ and not name.startswith("_") and (base is cls or name in vars(cls)):
                found.setdefault(name, "\n".join(lines))
    return found


def _docstrings_as_napoleon_reads_them():
    """(target, docstring, what) of every docstring the API reference shows."""
    for target, obj, raw in _documented_objects():
        what = ("module" if inspect.ismodule(obj) else "class" if inspect.isclass(obj)
                else "property" if isinstance(raw, property) else "method" if inspect.isroutine(obj)
                else "attribute")
        doc = inspect.getdoc(obj) if what != "attribute" else None
        if doc:
            yield target, doc, what
        if what == "class":
            yield from ((f"{target}.{name}", text, "attribute") for name, text in _attribute_comments(obj).items())


def test_every_type_napoleon_reads_is_a_name_that_resolves():
    """Napoleon reads ``name (words): text`` in Args and Attributes, and ``words: text`` at the
    start of an attribute's or property's docstring, as a type, which Sphinx links word by word:
    an explanation written there (``(the file a run folder stores it in)``, ``(tuple of 2 int)``,
    ``a (int), b (str): text``) becomes references that cannot resolve. Each word of a type must
    be a documented name, a builtin or ``typing`` name, or one ``conf.py`` ignores."""
    from sphinx.ext import napoleon  # the test extra installs Sphinx: this test runs in `make test`
    from sphinx.ext.napoleon.docstring import GoogleDocstring, NumpyDocstring

    config = napoleon.Config(napoleon_use_rtype=False)  # as docs/conf.py
    patterns, spellings = _nitpick_ignore(), _spellings(documented())
    bad = []
    for target, doc, what in _docstrings_as_napoleon_reads_them():
        # napoleon reads an attribute's first line as "type: text" only when it knows the name
        text = str(GoogleDocstring(str(NumpyDocstring(doc, config, what=what, name=target)), config, what=what,
                                   name=target))
        for match in TYPE_FIELD.finditer(text):
            words = [w.strip().lstrip("~") for w in TYPE_DELIMITERS.split(match.group(1) or match.group(2) or "")
                     if not TYPE_DELIMITERS.fullmatch(w)]
            bad += [f"{target}: {w!r}" for w in words if w and w not in spellings and not hasattr(builtins, w)
                    and not hasattr(typing, w) and not _ignored(patterns, "class", w)]
    assert not bad, "types that are no names (rewrite the docstring line):\n" + "\n".join(bad)
