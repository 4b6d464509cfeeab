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


def test_report_names_an_unfinished_job_beside_the_finished_run(tmp_path):
    """A killed `train --overwrite` leaves RUN and RUN.partial; the report showed RUN's figures
    without a word about the job that is replacing them."""
    from neuroaikit.runs import partial_dir

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text("{}")
    assert "Unfinished job" not in build_report(tmp_path / "r").read_text()
    partial_dir(tmp_path / "r").mkdir()
    page = build_report(tmp_path / "r").read_text()
    assert "Unfinished job beside this run" in page and f"{partial_dir(tmp_path / 'r')} holds an unfinished job" in page


def test_rdm_figure_has_a_colour_bar():
    from types import SimpleNamespace

    import numpy as np

    from neuroaikit.report.sections.alignment import _rdm_figure

    rng = np.random.default_rng(0)
    entry = SimpleNamespace(layer="relu1", model_rdm=rng.random(10).tolist(), rsa=SimpleNamespace(score=0.5))
    result = SimpleNamespace(layers=["relu1"], neural_rdm=rng.random(10).tolist(),
                             best_layers=lambda metric, count: [entry])
    fig = _rdm_figure(result)
    assert len(fig.axes) == 3  # the neural RDM, the layer's RDM and one shared colour bar
    assert fig.axes[-1].get_ylabel() == "dissimilarity (percentile)"


def test_twin_table_explains_negative_scores():
    from neuroaikit.report.sections.twin import NEGATIVE_NOTE, _evaluation_section

    evaluation = {"dataset": {"name": "x"}, "tier": "test",
                  "models": {"twin": {"single_trial_correlation": 0.2, "feve": -0.3}}}
    page = render_page("t", [_evaluation_section(None, evaluation)])
    assert NEGATIVE_NOTE.split(":")[0] in page
    evaluation["models"]["twin"]["feve"] = 0.3
    assert NEGATIVE_NOTE.split(":")[0] not in render_page("t", [_evaluation_section(None, evaluation)])


def test_twin_fit_curve_says_what_ended_the_fit():
    from neuroaikit.report.sections.twin import _evaluation_section

    evaluation = {"dataset": {"name": "x"}, "tier": "test", "models": {"twin": {"single_trial_correlation": 0.2}}}
    fit = {"history": [{"epoch": 1, "validation_correlation": 0.1}, {"epoch": 2, "validation_correlation": 0.2}],
           "best": {"best_epoch": 2, "stopped_by": "time_limit"}, "seconds": 30}
    assert "the time limit ended the fit" in render_page("t", [_evaluation_section(fit, evaluation)])
    del fit["best"]["stopped_by"]  # a run made before the reason was recorded
    assert "ended the fit" not in render_page("t", [_evaluation_section(fit, evaluation)])


def test_twin_fit_section_names_first_member_only_for_an_ensemble():
    """Two twins fitted, one kept: the text spoke of a 'first_member' row the evaluation never scores."""
    from neuroaikit.report.sections.twin import _evaluation_section

    evaluation = {"dataset": {"name": "x"}, "tier": "test", "models": {"twin": {"single_trial_correlation": 0.2}}}
    members = [{"seed": 0, "kept": True}, {"seed": 1, "kept": False}]
    fit = {"history": [{"epoch": 1, "validation_correlation": 0.1}], "best": {"best_epoch": 1}, "seconds": 3,
           "members": members}
    page = render_page("t", [_evaluation_section(fit, evaluation)])
    assert "2 twins fitted, 1 kept" in page and "first_member" not in page and "is the first alone" in page
    members[1]["kept"] = True
    assert "&#x27;first_member&#x27; scores the first alone" in render_page("t", [_evaluation_section(fit, evaluation)])


def test_twin_fit_section_names_the_start_the_fit_went_on_from():
    from neuroaikit.report.sections.twin import _evaluation_section

    evaluation = {"dataset": {"name": "x"}, "tier": "test", "models": {"twin": {"single_trial_correlation": 0.2}}}
    starts = [{"seed": 0, "validation_correlation": 0.09}, {"seed": 77, "validation_correlation": 0.37},
              {"seed": 78, "validation_correlation": float("nan")}]
    fit = {"history": [{"epoch": 1, "validation_correlation": 0.37, "starts": starts}], "best": {"best_epoch": 1}}
    page = render_page("t", [_evaluation_section(fit, evaluation)])
    assert "from 3 starts (validation r 0.0900, 0.3700, n/a); the fit went on from start 2 (seed 77)" in page
    fit["history"][0].pop("starts")  # one start, or a run made before starts: nothing said
    assert "starts" not in render_page("t", [_evaluation_section(fit, evaluation)])


def test_twin_probe_section_reports_neurons_without_orientation_selectivity():
    """A neuron whose tuning is flat has an undefined selectivity (NaN, stored as null): the
    mean is over the others and the page says how many (a real Allen twin had such neurons)."""
    import numpy as np

    from neuroaikit.report.sections.twin import _probe_section

    probe = {"neurons": [0], "tuning": {"osi_all": [0.2, None, 0.4], "responses": np.ones((4, 2, 1)).tolist(),
                                        "orientations": [0.0, 0.8, 1.6, 2.4]},
             "gradient_maps": [np.zeros((3, 4)).tolist()], "reverse_correlation_maps": [np.zeros((3, 4)).tolist()],
             "meis": [np.zeros((3, 4)).tolist()], "mei_activation": [1.0], "gradient_centers": [[1.0, 2.0]]}
    page = render_page("t", [_probe_section(probe)])
    assert "0.300 over 2 neurons" in page and "1 of 3 answer every grating alike" in page
    probe["tuning"]["osi_all"] = [None]
    assert "selectivity (1 - circular variance) undefined" in render_page("t", [_probe_section(probe)])


def test_twin_probe_section_reads_the_circular_variance_key_and_survives_neurons_without_a_centre():
    """Probe files since the OSI fix keep 1 - circular variance under
    ``orientation_selectivity_all`` (``osi_all`` is the (pref - orth) / (pref + orth) index); a
    neuron whose gradient map is empty has no centre (NaN, stored as null)."""
    import numpy as np

    from neuroaikit.report.sections.twin import _probe_section

    probe = {"neurons": [0, 1], "tuning": {"osi_all": [0.9, 0.9], "orientation_selectivity_all": [0.2, 0.4],
                                           "responses": np.ones((4, 2, 2)).tolist(),
                                           "orientations": [0.0, 0.8, 1.6, 2.4]},
             "gradient_maps": [np.zeros((3, 4)).tolist()] * 2,
             "reverse_correlation_maps": [np.zeros((3, 4)).tolist()] * 2,
             "meis": [np.zeros((3, 4)).tolist()] * 2, "mei_activation": [1.0, 2.0],
             "gradient_centers": [[1.0, 2.0], [None, None]]}
    page = render_page("t", [_probe_section(probe)])
    assert "selectivity (1 - circular variance) 0.300 over 2 neurons" in page
    assert "[nan, nan]" in page


def test_report_of_a_one_task_continual_run_says_what_is_undefined(tmp_path):
    """With one task backward/forward transfer and forgetting are undefined (NaN, stored as
    null): the report says n/a instead of failing after the run was committed."""
    import math

    from neuroaikit.continual import ContinualResult

    nan = math.nan
    run = Run(tmp_path / "c1")
    ContinualResult(benchmark="split-mnist", scenario="class", strategy="finetune", accuracy_matrix=[[0.745]],
                    average_accuracy=0.745, backward_transfer=nan, forward_transfer=nan, forgetting=nan,
                    accuracy_curve=[0.745], untrained_accuracy=[0.025], n_tasks=1, iters=20,
                    train_time_s=0.25).save(run)
    page = build_report(Run.open(run.path).path).read_text()
    assert ("Average accuracy after the last task 0.7450; backward transfer n/a; forward transfer n/a; "
            "forgetting n/a.") in page


def test_report_out_refuses_to_replace_a_file_that_is_not_a_report(tmp_path, capsys):
    from neuroaikit.cli.main import main

    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    model = run / "model.json"
    model.write_text('{"arch": "cnn"}')
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (model, notes, run / "metrics.json"):
        before = target.read_text()
        assert main(["report", str(run), "--out", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: --out {target} exists and is not a neuroaikit report; refusing to replace it "
                       f"(choose another file, or pass --overwrite)")
        assert target.read_text() == before
    assert main(["report", str(run), "--out", str(run)]) == 2 and "is a folder" in capsys.readouterr().err
    assert not (run / "report.html").exists()  # nothing was written
    # a report page (its own, or one written elsewhere) is rewritten, as is any file with --overwrite
    assert main(["report", str(run)]) == 0 and main(["report", str(run), "--out", str(run / "report.html")]) == 0
    elsewhere = tmp_path / "page.html"
    assert main(["report", str(run), "--out", str(elsewhere)]) == 0
    assert main(["report", str(run), "--out", str(elsewhere)]) == 0
    assert main(["report", str(run), "--out", str(notes), "--overwrite"]) == 0
    assert notes.read_text() == elsewhere.read_text() == (run / "report.html").read_text()
    assert "Nothing to report" in notes.read_text()
