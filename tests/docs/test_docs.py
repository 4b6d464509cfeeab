"""The documentation tells the truth about the code: every command it shows exists with the
options it uses, the README fits on a screen, the API reference covers every public name, and
every sanity check of the robustness protocol has its page."""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import time
import platform
from pathlib import Path

import pytest
from docs_extensions import docs_extension

from neuroaikit.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]


def _code_lines(path: Path) -> list[str]:
    """The lines of the shell code blocks of a Markdown page, continuation lines joined."""
    lines, block, fence = [], [], None
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
            else:
                if fence in ("bash", "sh", "console", "shell", ""):
                    lines += block
                fence, block = None, []
            continue
        if fence is not None:
            if block and block[-1].endswith("\\"):
                block[-1] = block[-1][:-1] + " " + line.strip()
            else:
                block.append(line.strip())
    return lines


def _commands(tool: str) -> list[tuple[str, str]]:
    """(page, command line) for every line that runs ``tool`` (also under torchrun / python -m)."""
    found = []
    for page in PAGES:
        for line in _code_lines(page):
            line = line.split(" #")[0].strip()
            if tool == "neuroaikit":
                match = re.search(r"(?:^|\s|-m )neuroaikit\s+(.*)$", line)
                if match and not line.startswith("#"):
                    found.append((page.name, "neuroaikit " + match.group(1)))
            elif re.match(r"^(nice\s+(-n\s+\d+\s+)?)?python\s+benchmarks/\S+\.py", line):
                found.append((page.name, line))
    return found


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def test_every_neuroaikit_command_in_the_docs_exists_with_its_options():
    from neuroaikit.cli.main import build_parser

    commands = _commands("neuroaikit")
    assert len(commands) > 30  # the extraction works: the guides are full of commands
    problems = []
    for page, command in commands:
        parser = build_parser()
        words = [w for w in _words(command)[1:] if w != "..."]
        path = ["neuroaikit"]
        # walk down the sub-commands (neuroaikit twin fit ...): a word that names none is an argument
        while words and _subparsers(parser) and not words[0].startswith("-"):
            choices = _subparsers(parser)
            if words[0] not in choices:
                problems.append(f"{page}: `{command}`: no command '{' '.join(path + words[:1])}'")
                break
            parser = choices[words[0]]
            path.append(words.pop(0))
        known = _option_strings(parser) | _option_strings(build_parser())
        for word in words:
            option = word.strip("[]()").split("=")[0]
            if option.startswith("--") and option not in known:
                problems.append(f"{page}: `{command}`: '{' '.join(path)}' has no option {option}")
    assert not problems, "\n".join(problems)


def _benchmark_options(script: Path) -> set[str]:
    """The options a benchmark script declares (read from its source: no torch import needed)."""
    return {"--help", "-h"} | _resultsgen().declared_options(script)


def test_every_benchmark_command_in_the_docs_exists_with_its_options():
    problems = []
    commands = _commands("python")
    assert commands
    for page, command in commands:
        words = _words(command)
        script = ROOT / next(w for w in words if w.startswith("benchmarks/"))
        if not script.is_file():
            problems.append(f"{page}: `{command}`: no script {script.relative_to(ROOT)}")
            continue
        options = _benchmark_options(script)
        problems += [f"{page}: `{command}`: {script.name} has no option {w}" for w in words
                     if w.startswith("--") and w.strip("[]()").split("=")[0] not in options]
    assert not problems, "\n".join(problems)


def test_the_readme_fits_on_a_screen_and_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):  # every relative link points at a file
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    assert (ROOT / "LICENSE").is_file() and (ROOT / "CITATION.cff").is_file() and (ROOT / "CHANGELOG.md").is_file()


def _tour(page: str) -> tuple[str, list[str]]:
    """The Python tour of a page and the command lines of its command-line twin below it."""
    tour, commands = re.search(r"```python\n(.*?)```.*?```bash\n(.*?)```", (ROOT / page).read_text(), re.S).groups()
    return tour, commands.splitlines()


@pytest.mark.slow  # ~35 s: the whole tour, Python then CLI; `make test-slow`, which CI runs
def test_the_tour_runs_in_order_python_then_command_line(tmp_path, monkeypatch):
    """A reader runs the Python tour, then its command-line twin in the same folder: the second
    must not collide with the first's run folder. The getting-started page shows the same tour."""
    from neuroaikit.cli.main import main

    tour, commands = _tour("README.md")
    assert _tour("docs/getting_started.md") == (tour, commands)
    monkeypatch.chdir(tmp_path)
    exec(compile(tour, "README.md tour", "exec"), {"__name__": "tour"})
    assert (tmp_path / "runs" / "tour" / "weights.safetensors").is_file()
    assert [line.split()[:2] for line in commands] == [["neuroaikit", "train"], ["neuroaikit", "evaluate"],
                                                       ["neuroaikit", "report"]]
    for line in commands:
        assert main(shlex.split(line)[1:]) == 0, line
    out = Path(shlex.split(commands[0])[-1])
    assert (out / "results" / "robustness.json").is_file() and (out / "report.html").is_file()


def test_the_api_reference_covers_every_public_name():
    apigen = docs_extension("apigen")
    import importlib
    import pkgutil

    import neuroaikit

    pages = {page.module: page for page in apigen.collect()}
    for info in pkgutil.walk_packages(neuroaikit.__path__, "neuroaikit."):
        if not info.ispkg or ".cli" in info.name or info.name.endswith(".sections"):
            continue
        declared = getattr(importlib.import_module(info.name), "__all__", None)
        if declared is None:
            continue
        assert info.name in pages, f"{info.name} has no API page"
        page = pages[info.name]
        assert set(page.names) == set(declared)
        for name in declared:  # documented on this page, or linked to the page that documents it
            owner = page.targets[name].rsplit(".", 1)[0]
            assert page.canonical[name] or pages[owner].canonical[page.targets[name].rsplit(".", 1)[1]], name


def test_every_sanity_check_has_its_protocol_page():
    from neuroaikit.attacks.results import BETTER_THAN_CHANCE, PROTOCOL_PAGES, protocol_page

    source = (ROOT / "src" / "neuroaikit" / "attacks" / "evaluate.py").read_text()
    names = set(re.findall(r'name="([^"]+)"', source)) | {BETTER_THAN_CHANCE}
    assert names == set(PROTOCOL_PAGES)
    for name in names:
        assert (ROOT / protocol_page(name)).is_file(), name
    index = (DOCS / "protocol" / "index.md").read_text()
    assert all(slug in index for slug in PROTOCOL_PAGES.values())


def _resultsgen():
    """The docs build's results-page generator."""
    return docs_extension("resultsgen")


def test_the_results_pages_render_every_committed_benchmark_json(tmp_path):
    resultsgen = _resultsgen()
    data = DOCS / "results" / "data"
    names = resultsgen.generate(data, tmp_path)
    assert names == sorted(p.stem for p in data.glob("*.json"))
    for name in names:
        page = (tmp_path / f"{name}.md").read_text()
        for key in ("command", "commit", "date", "machine"):
            assert f"* - {key}" in page
        assert "not recorded" not in page, f"{name}.json lacks part of its stamp: record it with docs/results/record.py"


def test_a_results_page_shows_nested_rows_as_tables():
    resultsgen = _resultsgen()
    data = {"stamp": {"command": "python benchmarks/x.py"}, "figures": {
        "threads": 1, "rows": [{"model": "a", "accuracy": 0.5, "per_subject": {"1": 0.25}}, {"model": "b", "accuracy": 0.75}]}}
    page = resultsgen.render("x", data)
    assert "## rows" in page
    assert "| model | accuracy | per_subject.1 |" in page
    assert "| b | 0.75 |  |" in page
    assert "| threads | 1 |" in page


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _shows(page: str, text: str) -> bool:
    """``text`` stands on the page as a whole value (``0.1`` inside ``0.12`` does not count)."""
    return re.search(r"(?<![\w.])" + re.escape(text) + r"(?![\w.])", page) is not None


@pytest.mark.parametrize("path", sorted((DOCS / "results" / "data").glob("*.json")), ids=lambda p: p.stem)
def test_every_number_of_a_results_file_is_on_its_page(path):
    """No value of a benchmark's JSON is dropped from its page: not a record's own list of
    records (models[0].certificates), nor a matrix (accuracy_matrices), nor a deeper list."""
    resultsgen = _resultsgen()
    data = resultsgen.load(path)
    page = resultsgen.render(path.stem, data)
    numbers = [v for key, value in data.items() if key not in ("stamp", "title", "description")
               for v in _leaves(value) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    missing = [resultsgen._fmt(v) for v in numbers if not _shows(page, resultsgen._fmt(v))]
    assert not missing, f"{path.name}: {len(missing)} of {len(numbers)} numbers not on the page, e.g. {missing[:5]}"


def test_a_results_page_gives_nested_records_and_matrices_tables_of_their_own():
    resultsgen = _resultsgen()
    data = {"stamp": {"command": "python benchmarks/x.py"}, "figures": {
        "models": [{"model": "a", "certificates": [{"sigma": 0.25, "certified_accuracy": {"0.5": 0.285}}]}],
        "rows": [{"strategy": "ewc", "accuracy_matrices": [[[0.99, 0.0152], [0.51, 0.98]]]}],
        "mixed": [1.5, [2.5, 3.5], {"k": 4.5}]}}
    page = resultsgen.render("x", data)
    assert "### models[0].certificates\n\n| sigma | certified_accuracy.0.5 |" in page
    assert "| 0.25 | 0.285 |" in page
    assert "### rows[0].accuracy_matrices[0]\n\n|  | 0 | 1 |" in page
    assert "| 0 | 0.99 | 0.0152 |\n| 1 | 0.51 | 0.98 |" in page
    # the parent's table comes before the tables of its rows
    assert page.index("## rows") < page.index("### rows[0].accuracy_matrices[0]")
    assert "| mixed[0] | 1.5 |" in page and "| mixed[1] | 2.5, 3.5 |" in page and "| mixed[2].k | 4.5 |" in page


def test_results_charts_are_chosen_and_never_show_settings(tmp_path):
    """Only the groups charts.json chooses are drawn (a record of unlike quantities, such as a count
    beside a correlation, is no chart), and choosing a group of settings is refused: one named
    settings (or config, args, ...), or one holding an option of the benchmark, given on the command
    line or left at the default its script declares."""
    resultsgen = _resultsgen()
    data = {"stamp": {"command": "python benchmarks/cifar_noise_defenses.py --n-certify 4 --draws 20"}, "figures": {
        "settings": {"train_subset": 5000, "epochs": 1},
        "certification": {"n0": 10, "n": 100, "alpha": 0.001, "n_examples": 4},  # --n0, --n declared by the script
        "voting": {"draws": 20, "vote_accuracy": 0.5},  # --draws given
        "fit": {"neurons": 103, "gain": 1.84},
        "seconds": {"neuroaikit": 0.55, "reference": 3.13}}}
    page = resultsgen.render("x", data, tmp_path)
    assert list(tmp_path.glob("*.png")) == [] and "![" not in page  # nothing chosen, nothing drawn
    page = resultsgen.render("x", data, tmp_path, charts=("figures.seconds",))
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["x-figures-seconds.png"]
    assert "![seconds](x-figures-seconds.png)" in page
    assert "| certification.n0 | 10 |" in page  # the settings are still on the page, as figures
    for chosen in ("figures.settings", "figures.certification", "figures.voting", "figures.nothing"):
        with pytest.raises(DataError, match=f"charts.json: x has no group of measurements '{chosen}'"):
            resultsgen.render("x", data, tmp_path, charts=(chosen,))


def test_every_chosen_chart_exists_and_a_bad_charts_file_is_one_line(tmp_path):
    resultsgen = _resultsgen()
    rules = resultsgen.load_charts(ROOT / "docs" / "results" / "charts.json")
    data_dir = ROOT / "docs" / "results" / "data"
    for rule in rules:
        matched = [p for p in data_dir.glob("*.json") if fnmatch.fnmatchcase(p.stem, rule["pages"])]
        assert matched, rule["pages"]
        for path in matched:  # raises for a group that is missing or not a group of measurements
            resultsgen.render(path.stem, resultsgen.load(path), None, charts=resultsgen.charts_for(path.stem, rules))
    (tmp_path / "charts.json").write_text('[{"pages": "x", "groups": "figures.seconds"}]')
    with pytest.raises(DataError, match="expected a list of"):
        resultsgen.load_charts(tmp_path / "charts.json")


@pytest.mark.parametrize("text, problem", [("{not json", "is not valid JSON"),
                                           ('[{"figure": 1}]', "holds a JSON list, not an object")])
def test_a_bad_results_file_stops_the_build_naming_it_before_any_page_is_written(tmp_path, text, problem):

    resultsgen = _resultsgen()
    data = tmp_path / "data"
    data.mkdir()
    (data / "a_good.json").write_text(json.dumps({"stamp": {"command": "c"}, "figures": {"x": 1}}))
    (data / "broken.json").write_text(text)
    with pytest.raises(DataError) as error:
        resultsgen.generate(data, tmp_path / "generated")
    message = str(error.value)
    assert str(data / "broken.json") in message and problem in message and "\n" not in message
    assert not (tmp_path / "generated").exists()


def test_a_note_added_after_the_run_reaches_the_pages_it_names_and_says_so(tmp_path):
    resultsgen = _resultsgen()
    data = tmp_path / "data"
    data.mkdir()
    (data / "bench_quoted.json").write_text(json.dumps({"stamp": {"command": "c"}, "figures": {
        "rows": [{"ours": 90.0, "published_pct": 91.0}]}}))
    (data / "bench_plain.json").write_text(json.dumps({"stamp": {"command": "c"}, "figures": {
        "rows": [{"ours": 90.0, "published_pct": None}]}}))
    (data / "other.json").write_text(json.dumps({"stamp": {"command": "c"}, "figures": {"published_pct": 91.0}}))
    (tmp_path / "notes.json").write_text(json.dumps([{"pages": "bench*", "field": "published_pct",
                                                      "note": "quoted from memory"}]))
    resultsgen.generate(data, tmp_path / "generated")
    pages = {name: (tmp_path / "generated" / f"{name}.md").read_text() for name in ("bench_quoted", "bench_plain", "other")}
    assert "Added after the run (docs/results/notes.json, not written by the command): quoted from memory" \
        in pages["bench_quoted"]
    assert "quoted from memory" not in pages["bench_plain"] + pages["other"]


def test_the_published_figures_quoted_from_memory_are_flagged_on_every_page_that_shows_them():
    resultsgen = _resultsgen()
    notes = resultsgen.load_notes(ROOT / "docs" / "results" / "notes.json")
    for path in sorted((ROOT / "docs" / "results" / "data").glob("*.json")):
        data = resultsgen.load(path)
        if resultsgen._holds(data, "published_pct"):
            assert "not been verified" in (resultsgen.note_for(path.stem, data, notes) or ""), path.name


def test_a_malformed_notes_file_is_a_one_line_error(tmp_path):

    resultsgen = _resultsgen()
    (tmp_path / "data").mkdir()
    (tmp_path / "notes.json").write_text(json.dumps([{"pages": "x*"}]))
    with pytest.raises(DataError, match=r"notes.json: expected a list of"):
        resultsgen.generate(tmp_path / "data", tmp_path / "generated")


def test_a_results_page_shows_undefined_figures_as_a_dash():
    # a single seed has no standard deviation (NaN) and a resumed run no wall time of its own (None)
    resultsgen = _resultsgen()
    data = {"stamp": {"command": "python benchmarks/x.py"}, "figures": {
        "rows": [{"strategy": "a", "mean_pct": 95.5, "sd_pct": float("nan"), "wall_time_s": None}]}}
    page = resultsgen.render("x", data)
    assert "| a | 95.5 | - | - |" in page
    assert "nan" not in page and "None" not in page


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*/plot_*.py")), ids=lambda p: p.parent.name)
def test_every_example_folder_is_a_gallery_section(example):
    # sphinx-gallery needs a README.txt per folder; the docstring title names the example
    assert (example.parent / "README.txt").is_file()
    doc = ast.get_docstring(ast.parse(example.read_text()))
    assert doc and "===" in doc.splitlines()[1]


def _record():
    sys.path.insert(0, str(DOCS / "results"))
    try:
        import record
    finally:
        sys.path.pop(0)
    return record


def test_record_refuses_to_replace_a_page_before_running_anything(capsys):
    """An existing results page is kept unless ``--overwrite`` is given, and the refusal comes
    before the benchmark command runs (the command here would fail if it ran)."""
    record = _record()
    existing = next((DOCS / "results" / "data").glob("*.json"))
    before = existing.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        record.main([existing.stem, "--", sys.executable, "-c", "raise SystemExit(7)"])
    assert exit_info.value.code == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == before


def test_record_stamps_the_commit_a_copied_tree_was_made_from():
    """On a device machine the copy's git history is missing or stale: ``--commit`` names the
    commit the copy was made from, and the stamp says that it was a copy."""
    record = _record()
    page = DOCS / "results" / "data" / "zz_test_record_commit.json"
    write = "import json, sys; json.dump({'figure': 1}, open(sys.argv[-1], 'w'))"
    try:
        record.main([page.stem, "--commit", "abc1234", "--", sys.executable, "-c", write])
        stamp = json.loads(page.read_text())["stamp"]
        assert stamp["commit"] == "abc1234 (run from a copy of the working tree made at that commit)"
        assert json.loads(page.read_text())["figures"] == {"figure": 1}
    finally:
        page.unlink(missing_ok=True)


WRITE_PART = "import json, sys; json.dump({'models': [{'model': 'a', 'complete': False}]}, open(sys.argv[-1], 'w'))"


@pytest.fixture
def record_in(tmp_path, monkeypatch):
    """record.py writing its pages under tmp_path instead of the repository."""
    record = _record()
    monkeypatch.setattr(record, "ROOT", tmp_path)
    (tmp_path / "docs" / "results" / "data").mkdir(parents=True)
    return record, tmp_path / "docs" / "results" / "data"


def test_record_writes_no_page_for_a_failed_benchmark_unless_asked_to_keep_the_part_it_wrote(record_in, capsys):
    record, data = record_in
    fails = [sys.executable, "-c", WRITE_PART + "; raise SystemExit(3)"]
    assert record.main(["part", "--", *fails]) == 3
    assert "the benchmark exited with status 3; no page written" in capsys.readouterr().err
    assert not (data / "part.json").exists()
    assert record.main(["part", "--keep-partial", "--", *fails]) == 3
    page = json.loads((data / "part.json").read_text())
    assert page["figures"] == {"models": [{"model": "a", "complete": False}]}
    assert page["stamp"]["partial"].startswith("the command exited with status 3 after ")


def test_record_keeps_the_figures_written_before_a_time_limit_stopped_the_benchmark(record_in):
    """``timeout`` sends SIGTERM to the recorder (and its benchmark): the page keeps what was written."""
    record, data = record_in
    # the benchmark writes its first figures, then the recorder is stopped while it still runs
    stopped = WRITE_PART + "; import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); time.sleep(60)"
    started = time.time()
    assert record.main(["part", "--keep-partial", "--", sys.executable, "-c", stopped]) == 128 + 15
    assert time.time() - started < 30  # the benchmark was killed, not waited for
    page = json.loads((data / "part.json").read_text())
    assert page["stamp"]["partial"].startswith("the command was stopped by SIGTERM (a time limit) after ")
    assert page["figures"]["models"][0]["model"] == "a"


def test_record_never_replaces_a_finished_page_with_a_partial_one(record_in, capsys):
    record, data = record_in
    finished = data / "part.json"
    finished.write_text(json.dumps({"stamp": {"command": "x"}, "figures": {"models": []}}))
    before = finished.read_bytes()
    assert record.main(["part", "--overwrite", "--keep-partial", "--", sys.executable, "-c",
                        WRITE_PART + "; raise SystemExit(3)"]) == 3
    assert "kept the finished page" in capsys.readouterr().err
    assert finished.read_bytes() == before


@pytest.mark.parametrize("code, status, says", [
    ("print('figures: 1')", 1, "exited with status 0 but wrote no JSON"),
    ("import sys; open(sys.argv[-1], 'w').write('{not json')", 1, "exited with status 0 but its JSON is unreadable"),
    ("import sys; open(sys.argv[-1], 'w').write('{\"rows\": ['); raise SystemExit(3)", 3,
     "exited with status 3 but its JSON is unreadable"),
])
def test_record_reports_a_benchmark_without_usable_json_in_one_line(record_in, capsys, code, status, says):
    record, data = record_in
    assert record.main(["page", "--keep-partial", "--", sys.executable, "-c", code]) == status
    err = capsys.readouterr().err
    assert err.startswith("record.py: error: ") and says in err and err.endswith("; no page written\n")
    assert err.count("\n") == 1
    assert not list(data.iterdir())


def test_record_reports_a_command_that_cannot_be_started(record_in, capsys):
    record, data = record_in
    assert record.main(["page", "--", "no-such-program-xyz", "benchmarks/x.py"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("record.py: error: cannot start the benchmark command: ") and "no-such-program-xyz" in err
    assert err.count("\n") == 1 and err.endswith("; no page written\n")
    assert not list(data.iterdir())


def test_record_counts_an_untracked_benchmark_as_an_uncommitted_change(record_in):
    """A new benchmark script is untracked until committed: its figures come from no commit."""
    record, data = record_in
    root = data.parents[2]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    (root / "README").write_text("x")
    subprocess.run([*git, "add", "README"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=root, check=True)
    (root / "tools").mkdir()
    (root / "tools" / "bench.py").write_text("import json, sys; json.dump({'figure': 1}, open(sys.argv[-1], 'w'))")
    (root / "notes.txt").write_text("an untracked file the command does not use")

    def commit(name, *command):
        assert record.main([name, "--", sys.executable, *command]) == 0
        return json.loads((data / f"{name}.json").read_text())["stamp"]["commit"]

    assert commit("named", "tools/bench.py").endswith(" (with uncommitted changes)")  # a path the command names
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "other.py").write_text("")
    assert commit("under_benchmarks", "-c", "import json, sys; json.dump({}, open(sys.argv[-1], 'w'))").endswith(
        " (with uncommitted changes)")
    subprocess.run([*git, "add", "tools", "benchmarks"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "add the benchmarks"], cwd=root, check=True)
    assert "uncommitted" not in commit("clean", "tools/bench.py")  # notes.txt is neither named nor code


def test_a_partial_results_page_says_so_before_its_figures():
    page = _resultsgen().render("x", {"stamp": {"command": "c", "partial": "the command exited with status 3 after 5 s"},
                                      "figures": {"accuracy": 0.5}})
    assert page.index("Partial results: the command exited with status 3") < page.index("accuracy")
    assert "* - partial" in page


def test_device_checks_runs_comma_joined_stages_as_lanes_and_names_each_failure(tmp_path):
    """``device_checks.sh`` runs the stages of ``a,b`` at the same time; each lane keeps its own
    status, the script goes on after a failed stage, and it exits 1 naming every stage that failed
    (unknown stages fail at once, so nothing here needs a GPU)."""
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_checks.sh"), str(tmp_path), str(tmp_path / "out"),
                             "no-such-a,no-such-b", "no-such-c"], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "DEVICE": "cpu"}, timeout=60)
    assert result.returncode == 1
    assert "== stage no-such-a,no-such-b took" in result.stdout
    assert "== failed stages: no-such-a no-such-b no-such-c" in result.stdout
    assert result.stderr.count("unknown stage") == 3
    assert (tmp_path / "out" / "pages.tar.gz").exists()


MAKE_RUN = ("import json, pathlib, sys; assert '--json' not in sys.argv; out = pathlib.Path('runs/x'); "
            "(out / 'results').mkdir(parents=True); (out / 'config.json').write_text(json.dumps({'folds': 5})); "
            "(out / 'metrics.json').write_text(json.dumps({'cca_accuracy': 0.7})); "
            "(out / 'results' / 'bmi.json').write_text(json.dumps({'decoders': [{'name': 'cca', 'accuracy': 0.7}]}))")


def test_record_reads_a_command_line_runs_figures_from_its_run_folder(record_in):
    """``--run-folder`` records a ``neuroaikit ... --out DIR`` command, which writes no --json:
    the page holds the folder's config, metrics and results."""
    record, data = record_in
    assert record.main(["cli", "--run-folder", "runs/x", "--", sys.executable, "-c", MAKE_RUN]) == 0
    page = json.loads((data / "cli.json").read_text())
    assert page["figures"] == {"config": {"folds": 5}, "metrics": {"cca_accuracy": 0.7},
                               "results": {"bmi": {"decoders": [{"name": "cca", "accuracy": 0.7}]}}}
    assert shlex.split(page["stamp"]["command"])[-1] == MAKE_RUN  # run as given: no --json added


def test_record_refuses_a_run_folder_that_exists_before_the_command_runs(record_in, capsys):
    """Figures read from a folder an earlier run left would be stamped with this command: refused,
    before the command runs (it would fail if it ran)."""
    record, data = record_in
    for existing in ("runs/x", "runs/x.partial"):
        (data.parents[2] / existing).mkdir(parents=True)
        with pytest.raises(SystemExit) as exit_info:
            record.main(["cli", "--run-folder", "runs/x", "--", sys.executable, "-c", "raise SystemExit(7)"])
        assert exit_info.value.code == 2
        assert "--run-folder: runs/x exists" in capsys.readouterr().err
        (data.parents[2] / existing).rmdir()
    assert not list(data.iterdir())


def test_record_writes_no_page_when_the_command_leaves_no_run_folder(record_in, capsys):
    record, data = record_in
    assert record.main(["cli", "--run-folder", "runs/x", "--", sys.executable, "-c", "print('done')"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("record.py: error: the command exited with status 0 but left no readable run folder")
    assert err.count("\n") == 1 and not list(data.iterdir())


PRINT_JSON = ("import json, sys; assert '--json' not in sys.argv; print('loading', file=sys.stderr); "
              "print(json.dumps({'splits': {'train': {'n': 3, 'load_s': 0.5}}}))")


def test_record_takes_the_figures_a_command_prints_with_stdout_json(record_in, capfd):
    """``--stdout-json`` records a command that prints its JSON (``neuroaikit data info --json``):
    the page's figures are its standard output, the command runs as given, stderr passes through."""
    record, data = record_in
    assert record.main(["info", "--stdout-json", "--", sys.executable, "-c", PRINT_JSON]) == 0
    page = json.loads((data / "info.json").read_text())
    assert page["figures"] == {"splits": {"train": {"n": 3, "load_s": 0.5}}}
    assert shlex.split(page["stamp"]["command"])[-1] == PRINT_JSON
    assert "loading" in capfd.readouterr().err


@pytest.mark.parametrize("code, status, says", [
    ("pass", 1, "printed nothing on standard output"),
    ("print('counts: 3')", 1, "its JSON is unreadable"),
    ("print('{}'); raise SystemExit(4)", 4, "the benchmark exited with status 4"),
])
def test_record_with_stdout_json_writes_no_page_without_printed_json(record_in, capsys, code, status, says):
    record, data = record_in
    assert record.main(["info", "--stdout-json", "--", sys.executable, "-c", code]) == status
    err = capsys.readouterr().err
    assert err.startswith("record.py: ") and says in err and err.count("\n") == 1
    assert not list(data.iterdir())


@pytest.mark.parametrize("other", [["--run-folder", "runs/x"], ["--keep-partial"]])
def test_record_refuses_stdout_json_with_another_source_of_figures(record_in, capsys, other):
    record, data = record_in
    with pytest.raises(SystemExit) as exit_info:
        record.main(["info", "--stdout-json", *other, "--", sys.executable, "-c", "raise SystemExit(7)"])
    assert exit_info.value.code == 2 and "--stdout-json" in capsys.readouterr().err
    assert not list(data.iterdir())


def test_a_benchmark_declares_the_options_its_shared_helpers_add_on_every_call(tmp_path):
    """``add_execution_arguments`` (neuroaikit/cli/options.py) adds ``--device`` and ``--threads``
    on every call and ``--precision`` only for ``trains=True``: called without it, ``--precision``
    is not declared, so a documented command passing it would be caught."""
    script = tmp_path / "bench.py"
    script.write_text("from _cli import add_output_options\n"
                      "add_execution_arguments(parser, threads=1)\nadd_output_options(parser, 'runs/bench/x')\n"
                      "parser.add_argument('--n-images')\n")
    options = _resultsgen().declared_options(script)
    assert {"--device", "--threads", "--out", "--overwrite", "--json", "--n-images"} <= options
    assert "--precision" not in options


def test_a_stamp_names_the_cpu_and_its_vector_instructions():
    """Two machines whose stamps both read "x86_64, 2 cores" trained the same command
    differently (the FGSM-RS relu3 pages): the stamp now says which CPU ran it, and the vector
    instructions torch uses on it."""
    import torch

    record = _record()
    assert record.cpu().endswith(f"({torch.backends.cpu.get_cpu_capability()})")
    assert record.machine().startswith(record.cpu() + ", ")
    if Path("/proc/cpuinfo").is_file() and "model name" in Path("/proc/cpuinfo").read_text():
        assert record.cpu() != f"{platform.machine()} ({torch.backends.cpu.get_cpu_capability()})"
