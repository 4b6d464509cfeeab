"""The generated API reference documents each object once and shows only names it can link:
constants re-exported by a package, class bases, and the index's one-line module summaries."""

from __future__ import annotations

import importlib
import inspect

from docs_extensions import docs_extension


def _pages():
    apigen = docs_extension("apigen")
    return apigen, {page.module: page for page in apigen.collect()}


def _is_constant(obj) -> bool:
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))


def test_a_constant_a_package_re_exports_is_documented_on_its_module_page_only():
    apigen, pages = _pages()
    for package, module, name in [("neuroaikit.continual", "neuroaikit.continual.metrics", "METRICS"),
                                  ("neuroaikit.continual", "neuroaikit.continual.config", "PROTOCOLS"),
                                  ("neuroaikit.certify", "neuroaikit.certify.sensitivity", "SUPPORTED")]:
        assert pages[module].canonical[name] and not pages[package].canonical[name], name
        assert pages[package].targets[name] == f"{module}.{name}"
        text = apigen.render(pages[package])
        assert f".. py:data:: {name}\n" not in text
        assert f":py:obj:`{name} <{module}.{name}>`" in text
    # no page documents a constant that a page of one of its submodules documents too
    for page in pages.values():
        for name in page.names:
            obj = getattr(importlib.import_module(page.module), name)
            if not (_is_constant(obj) and page.canonical[name]):
                continue
            also = [other.module for other in pages.values() if other.module.startswith(page.module + ".")
                    and name in other.names and other.canonical[name]
                    and getattr(importlib.import_module(other.module), name) is obj]
            assert not also, f"{page.module}.{name} is documented again in {also}"


def test_equal_constants_of_unrelated_modules_are_each_documented():
    """Small equal values are one object in Python; only a package's own submodules share one."""
    _, pages = _pages()
    for page in pages.values():
        module = importlib.import_module(page.module)
        for name in page.names:
            if _is_constant(getattr(module, name)):
                owner = page.targets[name].rsplit(".", 1)[0]
                assert owner == page.module or owner.startswith(page.module + "."), page.targets[name]


def test_a_base_the_reference_does_not_document_shows_as_its_own_bases():
    apigen, pages = _pages()

    class Documented:
        pass

    class _Private(Documented):
        pass

    class _Bare:
        pass

    class Outside:
        pass

    for cls in (Documented, _Private, _Bare):
        cls.__module__ = "neuroaikit.example"
    assert apigen.shown_bases([_Private, Outside], {Documented}) == [Documented, Outside]
    assert apigen.shown_bases([_Bare], {Documented}) == [object]  # nothing left to show but object
    assert apigen.shown_bases([], {Documented}) == []

    from neuroaikit.continual.strategies import EWC, Strategy

    documented = apigen.documented_classes(list(pages.values()))
    assert Strategy in documented and EWC.__bases__[0] not in documented  # EWC derives from a private class
    assert apigen.shown_bases(list(EWC.__bases__), documented) == [Strategy]


def test_the_index_resolves_each_summary_against_its_module(tmp_path):
    """A summary is the first paragraph of a module docstring, whose bare references
    (:class:`Strategy`) name that module's objects."""
    apigen = docs_extension("apigen")
    apigen.generate(tmp_path)
    index = (tmp_path / "index.rst").read_text()
    row = index.index(":doc:`neuroaikit.continual.strategies`")
    cell = index[row:index.index("* - ", row + 1)]
    assert ".. py:currentmodule:: neuroaikit.continual.strategies" in cell and ":class:`Strategy`" in cell
    assert cell.index("py:currentmodule") < cell.index(":class:`Strategy`")
    assert ".. py:currentmodule:: None" in index  # the rest of the page names no module
