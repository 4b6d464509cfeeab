import re

from neuroaikit.report import Section, build_report, render_page
from neuroaikit.runs import Run
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, train


def test_page_escapes_user_strings_and_needs_no_network():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evil = '<script>alert("x")</script>'
    section = Section(evil).paragraph(evil).table([evil], [[evil]])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    section.figure(fig, caption=evil)
    page = render_page(evil, [section])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert 'src="data:image/png;base64,' in page


def test_report_of_a_training_run(tmp_path):
    out = tmp_path / 'run <b>"name"</b>'
    run = train(TrainConfig(dataset="digits", epochs=1, model_kwargs={"hidden": 32}, eval_draws=3), out, progress=silent())
    path = build_report(run.path)
    page = path.read_text()
    assert "Training: cnn on digits" in page
    # one epoch is one point: the report says it in words instead of drawing a one-dot "curve"
    assert "Learning curve" not in page and "One epoch: training loss" in page
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert "vote@3" in page


def test_report_of_an_empty_run_says_so(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text("{}")
    page = build_report(Run.open(tmp_path / "r").path).read_text()
    assert "Nothing to report" in page
