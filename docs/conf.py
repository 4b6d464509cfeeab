"""Sphinx configuration of the neuroaikit documentation (built by ``make docs``).

What the site shows of the code and its results is generated on every build, so that new code needs no
edit here:

- the API reference (``api/``): one page per package that declares ``__all__``, found by
  walking :mod:`neuroaikit` (``_ext/apigen.py``);
- the command-line reference (``cli/``): one page per command and subcommand, from the parser
  (``_ext/cligen.py``);
- the results pages (``results/generated/``): one page per benchmark JSON file in
  ``results/data/`` (``_ext/resultsgen.py``);
- the guides' figures written as {result}`NAME:KEY.PATH:FORMAT`: read from ``results/data/NAME.json``
  at build time and linked to its page (``_ext/resultrole.py``), so no guide copies a recorded figure;
- the examples gallery (``auto_examples/``): sphinx-gallery runs every ``examples/*/plot_*.py``;
  a new ``examples/<name>/`` folder with a ``README.txt`` becomes a new gallery section.

Guides are picked up by a glob toctree over ``guide/*.md``.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT / "src"))

# the examples read the shared data (README: ../shared/data beside the checkout) unless the
# builder names another folder; sphinx-gallery runs each example in its own folder
os.environ.setdefault("NEUROAIKIT_DATA", str(ROOT.parent / "shared" / "data"))

import apigen  # noqa: E402
import cligen  # noqa: E402
import resultsgen  # noqa: E402

import neuroaikit  # noqa: E402

project = "neuroaikit"
author = "The neuroaikit developers"
copyright = "2025, the neuroaikit developers"
release = neuroaikit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "resultrole",  # {result}`NAME:KEY` quotes a figure of results/data/NAME.json (_ext/resultrole.py)
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5", "results/data"]
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# one docstring convention is read for the whole package: numpydoc sections, with napoleon
# also accepting the "name (type): text" argument lists of the configuration classes
napoleon_numpy_docstring = True
napoleon_google_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # signatures stay readable; types are in the docstrings
# each class shows its bases (Sphinx reads any value of a flag option, False too, as "on"); a private
# or undocumented neuroaikit base is shown as its nearest documented ancestor (_show_documented_bases)
autodoc_default_options = {"show-inheritance": True}
suppress_warnings = ["myst.xref_missing"] if os.environ.get("NEUROAIKIT_DOCS_LAX") else []

# Without nitpicky Sphinx renders a cross-reference it cannot resolve as plain text and says
# nothing, so a misspelt neuroaikit name silently loses its link; nitpicky (with -W) fails the
# build instead. The build has no internet, hence no intersphinx: the names of other projects
# (the docstrings' types, the bases autodoc shows, torch's own docstrings that forward()
# inherits) cannot resolve and are ignored here. Every pattern names only what lies outside
# neuroaikit: a bare name such as ``Run`` must still resolve. Plain literals, which
# tests/docs/test_cross_references.py reads and checks against every documented name.
nitpicky = True
nitpick_ignore_regex = [
    # other projects' modules and everything in them (Sphinx matches the whole target)
    (r"py:.*", r"(torch|nn|numpy|np|scipy|sklearn|mne|pyriemann|ray|pathlib|typing|collections|time|os)(\..+)?"),
    # Python's builtin types
    (r"py:.*", r"int|float|complex|bool|str|bytes|dict|list|tuple|set|frozenset|object|type|None"),
    # the words Google-style types use for a kind of value rather than a class
    (r"py:.*", r"sequence|iterable|callable"),
    # what torch's own docstrings, which forward() inherits, name bare
    (r"py:.*", r"Module"),
]

html_theme = "furo"
html_title = f"neuroaikit {release}"
html_static_path: list[str] = []

def _examples_pattern() -> str:
    """Every example runs, except those that read the shared data when it is absent (they are
    shown without output, and the build says so): a checkout without ../shared/data still builds."""
    if Path(os.environ["NEUROAIKIT_DATA"]).is_dir():
        return r"/plot_"
    needing = sorted(p.stem for p in (ROOT / "examples").glob("*/plot_*.py") if "NEUROAIKIT_DATA" in p.read_text())
    if needing:
        print(f"docs: {os.environ['NEUROAIKIT_DATA']} is absent: not running {', '.join(needing)}")
    return r"/(?!" + "|".join(needing) + r"\.py)plot_" if needing else r"/plot_"


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": _examples_pattern(),
    # every example must run: a failing example fails the build
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "plot_gallery": os.environ.get("NEUROAIKIT_DOCS_PLOT_GALLERY", "True"),
}


def _skip_sklearn_routing(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_*_request`` methods on every estimator subclass; their
    docstrings point into scikit-learn's own docs, which this site cannot resolve."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _show_documented_bases(documented, app, name, obj, options, bases):
    """A base the API reference does not document would be an unresolvable reference: show the
    bases it stands for instead (``apigen.shown_bases``)."""
    bases[:] = apigen.shown_bases(bases, documented)


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    pages = apigen.generate(HERE / "api")
    app.connect("autodoc-process-bases", partial(_show_documented_bases, apigen.documented_classes(pages)))
    cligen.generate(HERE / "cli")
    resultsgen.generate(HERE / "results" / "data", HERE / "results" / "generated")
