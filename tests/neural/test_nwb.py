from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from neuroaikit.errors import ConfigError, DataError
from neuroaikit.neural import SyntheticCortex, load_neural, load_nwb, write_nwb

pytestmark = pytest.mark.filterwarnings("ignore:The linked table:UserWarning")


def test_round_trip(tmp_path):
    ds = SyntheticCortex(n_neurons=6, image_shape=(8, 10), seed=1).sample(n_train=20, n_validation=4, n_test_images=3, repeats=3)
    path = write_nwb(ds, tmp_path / "session.nwb")
    back = load_neural(path)
    np.testing.assert_allclose(back.responses, ds.responses)
    np.testing.assert_array_equal(back.tiers, ds.tiers)
    np.testing.assert_allclose(back.trial_stimuli(), ds.trial_stimuli())
    np.testing.assert_allclose(back.behavior, ds.behavior)
    np.testing.assert_allclose(back.cortical_positions, ds.cortical_positions, rtol=1e-6)


def _frame_rate_file(path, with_images=True, nan_frame=None, rgb=False, running=None, add=None):
    """An Allen-like file: a 10 Hz dF/F trace, a trials table with image ids, no tiers
    (``add(nwb)`` adds more before writing)."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = NWBFile(session_description="t", identifier="t", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    images = np.random.default_rng(0).random((4, 5, 5)).astype(np.float32)
    if with_images and rgb:
        from pynwb.base import Images
        from pynwb.image import RGBImage

        colour = [RGBImage(name=f"scene{i}", data=np.stack([img, img / 2, 1 - img], -1)) for i, img in enumerate(images)]
        nwb.add_stimulus_template(Images(name="scenes", images=colour))
    elif with_images:
        nwb.add_stimulus_template(ImageSeries(name="natural_scenes", data=images, unit="a.u.", rate=1.0, format="raw"))
    nwb.add_trial_column("frame", "image index")
    frames = [0, 1, 2, 3, 0, 1]
    for i, f in enumerate(frames):
        nwb.add_trial(start_time=float(i), stop_time=float(i) + 0.5, frame=f)
    device = nwb.create_device(name="scope")
    plane = nwb.create_imaging_plane(name="p", optical_channel=OpticalChannel(name="g", description="g", emission_lambda=510.0),
                                     description="p", device=device, excitation_lambda=920.0, indicator="GCaMP6f", location="VISp", imaging_rate=10.0)
    seg = ImageSegmentation()
    ps = seg.create_plane_segmentation(name="rois", description="r", imaging_plane=plane)
    for _ in range(2):
        ps.add_roi(pixel_mask=[(0, 0, 1.0)])
    ophys = nwb.create_processing_module("ophys", "o")
    ophys.add(seg)
    t = np.arange(0, 6, 0.1)
    trace = np.stack([t, -t], 1).astype(np.float32)
    if nan_frame is not None:
        trace[nan_frame, 0] = np.nan
    region = ps.create_roi_table_region(region=[0, 1], description="all")
    ophys.add(DfOverF(roi_response_series=RoiResponseSeries(name="dff", data=trace, rois=region, unit="1", timestamps=t)))
    if running is not None:  # (timestamps, speeds) in the Allen layout: processing/running/speed
        from pynwb import TimeSeries

        module = nwb.create_processing_module("running", "running speed")
        module.add(TimeSeries(name="speed", data=running[1], timestamps=running[0], unit="cm/s"))
    if add is not None:
        add(nwb)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return t, trace


def test_frame_rate_trace_is_averaged_per_trial(tmp_path):
    t, trace = _frame_rate_file(tmp_path / "allen_like.nwb")
    ds = load_nwb(tmp_path / "allen_like.nwb")
    assert ds.n_trials == 6 and ds.n_neurons == 2
    expected = np.array([trace[(t >= i - 1e-9) & (t < i + 0.5 - 1e-9)].mean(0) for i in range(6)])
    np.testing.assert_allclose(ds.responses, expected, atol=1e-5)
    # repeated images become the test tier when the file names no tiers
    assert ds.tiers.tolist() == ["test", "test", "train", "train", "test", "test"]


def test_a_response_window_after_each_onset_is_averaged_instead_of_the_presentation(tmp_path):
    """``window=(0.2, 0.7)``: the frames in ``[start + 0.2, start + 0.7)``, past the 0.5 s
    presentation; a recording file gives the same through ``load_neural``."""
    t, trace = _frame_rate_file(tmp_path / "flashes.nwb")
    ds = load_nwb(tmp_path / "flashes.nwb", window=(0.2, 0.7))
    expected = np.array([trace[(t >= i + 0.2 - 1e-9) & (t < i + 0.7 - 1e-9)].mean(0) for i in range(6)])
    np.testing.assert_allclose(ds.responses, expected, atol=1e-5)
    assert ds.info["window"] == [0.2, 0.7]
    (tmp_path / "recording.yaml").write_text("nwb: flashes.nwb\nwindow: [0.2, 0.7]\nseries: dff\n")
    np.testing.assert_array_equal(load_neural(tmp_path / "recording.yaml").responses, ds.responses)


def test_response_window_errors_are_one_line(tmp_path):
    t, trace = _frame_rate_file(tmp_path / "flashes.nwb")
    # the last presentation starts at 5 s; the trace ends with the frame at 5.9 s (to 6.0 s)
    with pytest.raises(DataError, match=r"'dff': 1 stimulus onset\(s\) \(first at 5\.000 s\) put the response "
                                        r"window \[0\.5, 1\.5\] s partly outside the recording \(0\.000-5\.900 s\); "
                                        r"leave those trials out with --drop-nan-trials"):
        load_nwb(tmp_path / "flashes.nwb", window=(0.5, 1.5))
    # asked to, the trial the recording's end cuts is left out like one with a dropped frame
    kept = load_nwb(tmp_path / "flashes.nwb", window=(0.5, 1.5), nan_policy="drop")
    assert kept.n_trials == 5 and kept.info["dropped_nan_trials"] == 1
    expected = np.array([trace[(t >= i + 0.5 - 1e-9) & (t < i + 1.5 - 1e-9)].mean(0) for i in range(5)])
    np.testing.assert_allclose(kept.responses, expected, atol=1e-5)
    with pytest.raises(DataError, match=r"put the response window \[6\.5, 7\.0\] s outside the recording"):
        load_nwb(tmp_path / "flashes.nwb", window=(6.5, 7.0), nan_policy="drop")  # no window in it: a wrong clock
    for bad in [(0.5, 0.2), (0.1,), ("a", 1), (0.0, float("inf"))]:
        with pytest.raises(ConfigError, match="window must be two numbers"):
            load_nwb(tmp_path / "flashes.nwb", window=bad)
    from neuroaikit.neural.suite2p import Suite2pRecording

    with pytest.raises(ConfigError, match="window must be two numbers"):  # the suite2p loader checks alike
        Suite2pRecording(suite2p="s2p", window=(0.0, float("inf")))
    (tmp_path / "bad.yaml").write_text("nwb: flashes.nwb\nwindow: [0.5, 0.2]\n")
    with pytest.raises(ConfigError, match=r"window must be two numbers \(start, stop\) seconds after onset"):
        load_neural(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("nwb: flashes.nwb\nwindows: [0.1, 0.5]\n")
    with pytest.raises(ConfigError, match=r"unknown .*typo\.yaml option\(s\) windows; known: nwb, series"):
        load_neural(tmp_path / "typo.yaml")
    ds = SyntheticCortex(n_neurons=3, image_shape=(4, 4), seed=1).sample(n_train=8, n_validation=2, n_test_images=2, repeats=2)
    per_trial = write_nwb(ds, tmp_path / "per_trial.nwb")
    with pytest.raises(ConfigError, match="holds one response per presentation, so a response window does not apply"):
        load_nwb(per_trial, window=(0.0, 0.5))


def test_a_nan_frame_spoils_only_its_trial(tmp_path):
    """A NaN frame at 2.2 s lies in trial 2's window (2-2.5 s) only: the default stops naming the
    option; ``nan_policy="drop"`` leaves out that trial alone, the others as averaged."""
    t, trace = _frame_rate_file(tmp_path / "dropped_frame.nwb", nan_frame=22)
    with pytest.raises(DataError, match=r"'dff': responses hold NaN/inf in 1 trial\(s\) \(first: trial 2\); "
                                        r"leave them out with --drop-nan-trials \(twin fit, twin evaluate, align\)"):
        load_neural(tmp_path / "dropped_frame.nwb")
    ds = load_neural(tmp_path / "dropped_frame.nwb", nan_policy="drop")
    assert ds.trial_ids.tolist() == [0, 1, 3, 4, 5]
    expected = np.array([trace[(t >= i - 1e-9) & (t < i + 0.5 - 1e-9)].mean(0) for i in (0, 1, 3, 4, 5)])
    np.testing.assert_allclose(ds.responses, expected, atol=1e-5)


def test_rgb_stimulus_templates_are_read_channels_first(tmp_path):
    _frame_rate_file(tmp_path / "colour.nwb", rgb=True)
    ds = load_nwb(tmp_path / "colour.nwb")
    assert ds.image_shape == (3, 5, 5)
    np.testing.assert_allclose(ds.stimuli[:, 1], ds.stimuli[:, 0] / 2, rtol=1e-6)
    np.testing.assert_allclose(ds.stimuli[:, 2], 1 - ds.stimuli[:, 0], rtol=1e-6)


def test_running_speed_series_becomes_the_behaviour(tmp_path):
    """Without behaviour columns, the Allen-style ``processing/running/speed`` series is averaged
    within each trial (a NaN sample left out; interpolated for a trial with no sample), read by
    the NWB loader and as a suite2p NWB log alike."""
    from neuroaikit.neural.nwb import behavior_per_trial, open_nwb, presentation_table

    stamps = np.concatenate([np.arange(0, 4, 0.05), [5.9]])  # 20 Hz, then a gap over trials 4-5
    speed = 10 * stamps
    speed[3] = np.nan
    _frame_rate_file(tmp_path / "running.nwb", running=(stamps, speed))
    ds = load_nwb(tmp_path / "running.nwb")
    expected = [np.nanmean(speed[(stamps >= i - 1e-9) & (stamps < i + 0.5 - 1e-9)]) for i in range(4)]
    expected += [10 * 4.25, 10 * 5.25]  # the line from 3.95 s to 5.9 s, at each trial's middle
    np.testing.assert_allclose(ds.behavior[:, 0], expected, rtol=1e-5)
    assert ds.behavior.shape == (6, 1)
    with open_nwb(tmp_path / "running.nwb") as nwb:
        direct, centre = behavior_per_trial(nwb, tmp_path, presentation_table(nwb, tmp_path))
    np.testing.assert_allclose(direct[:, 0], expected, rtol=1e-5)
    assert centre is None
    from neuroaikit.neural.suite2p import _read_nwb_log

    np.testing.assert_allclose(_read_nwb_log(tmp_path / "running.nwb")["behavior"][:, 0], expected, rtol=1e-5)
    _frame_rate_file(tmp_path / "still.nwb")
    assert load_nwb(tmp_path / "still.nwb").behavior is None


#: an eye camera at 30 Hz over the six 0.5-s trials of ``_frame_rate_file``, in the units rigs
#: record: pupil centre in camera pixels (about 755, 471), pupil area in square pixels
EYE_STAMPS = np.arange(0, 6, 1 / 30)


def _eye_samples():
    t = EYE_STAMPS
    centre = np.stack([755 + 6 * np.sin(t), 471 + 4 * np.cos(2 * t)], 1)
    area = 900 + 150 * np.sin(0.7 * t) ** 2
    area_raw = area + 40.0
    area[(t > 2.1) & (t < 2.3)] = np.nan  # a blink inside trial 2
    return centre, area, area_raw


def _window_means(values, stamps):
    """Direct per-trial means of the six trials [i, i + 0.5), NaN samples left out."""
    return np.array([np.nanmean(values[(stamps >= i - 1e-9) & (stamps < i + 0.5 - 1e-9)], 0) for i in range(6)])


def test_eye_and_pupil_tracking_series_become_pupil_centre_and_behaviour(tmp_path):
    """Core NWB layout: ``EyeTracking`` holds the pupil centre, ``PupilTracking`` the area (the
    processed series before the raw one); with running speed the behaviour is the Sensorium
    triple (size, its time derivative, running), each averaged within the trials; the table's
    own columns would take precedence (round trip above)."""
    from pynwb import TimeSeries
    from pynwb.behavior import EyeTracking, PupilTracking, SpatialSeries

    centre, area, area_raw = _eye_samples()

    def add(nwb):
        module = nwb.create_processing_module("behavior", "eye camera")
        module.add(EyeTracking(spatial_series=SpatialSeries(name="eye_position", data=centre, timestamps=EYE_STAMPS,
                                                            reference_frame="camera pixels", unit="px")))
        module.add(PupilTracking(time_series=[
            TimeSeries(name="pupil_area_raw", data=area_raw, timestamps=EYE_STAMPS, unit="px^2"),
            TimeSeries(name="pupil_area", data=area, timestamps=EYE_STAMPS, unit="px^2")]))

    stamps = np.arange(0, 6, 0.05)
    _frame_rate_file(tmp_path / "eye.nwb", running=(stamps, 3 + stamps), add=add)
    ds = load_nwb(tmp_path / "eye.nwb")
    np.testing.assert_allclose(ds.pupil_center, _window_means(centre, EYE_STAMPS), rtol=1e-6)
    assert ds.behavior.shape == (6, 3)
    np.testing.assert_allclose(ds.behavior[:, 0], _window_means(area, EYE_STAMPS), rtol=1e-6)
    np.testing.assert_allclose(ds.behavior[:, 1], _window_means(np.gradient(area, EYE_STAMPS), EYE_STAMPS), rtol=1e-4,
                               atol=1e-3)
    np.testing.assert_allclose(ds.behavior[:, 2], _window_means(3 + stamps, stamps), rtol=1e-6)
    from neuroaikit.neural.suite2p import _read_nwb_log

    log = _read_nwb_log(tmp_path / "eye.nwb")
    np.testing.assert_allclose(log["pupil_center"], ds.pupil_center)
    np.testing.assert_allclose(log["behavior"], ds.behavior)


def test_eye_tracking_as_one_column_x_and_y_series_and_a_diameter(tmp_path):
    """Some rigs store the centre as two one-column series (``center_x``, ``center_y``) and the
    size as a diameter; without running speed the behaviour is size and derivative alone."""
    from pynwb import TimeSeries
    from pynwb.behavior import EyeTracking, PupilTracking, SpatialSeries

    centre, area, _ = _eye_samples()
    diameter = 2 * np.sqrt(area / np.pi)

    def add(nwb):
        module = nwb.create_processing_module("behavior", "eye camera")
        eye = EyeTracking(name="eye_position")
        for axis, column in (("x", 0), ("y", 1)):
            eye.add_spatial_series(SpatialSeries(name=f"center_{axis}", data=centre[:, column], timestamps=EYE_STAMPS,
                                                 reference_frame="top left", unit="px"))
        module.add(eye)
        module.add(PupilTracking(time_series=TimeSeries(name="diameter", data=diameter, timestamps=EYE_STAMPS, unit="px")))

    _frame_rate_file(tmp_path / "xy.nwb", add=add)
    ds = load_nwb(tmp_path / "xy.nwb")
    np.testing.assert_allclose(ds.pupil_center, _window_means(centre, EYE_STAMPS), rtol=1e-6)
    np.testing.assert_allclose(ds.behavior[:, 0], _window_means(diameter, EYE_STAMPS), rtol=1e-6)
    assert ds.behavior.shape == (6, 2)


def _extension(directory, name, types, includes):
    """Write and load the NWB extension ``name`` defining ``types`` (a spec written here, as the
    Allen extensions are not on the package index; files written with it carry the spec, as
    Allen's do). Loaded once per process: pynwb keeps a namespace by its name."""
    from pynwb import get_class, load_namespaces
    from pynwb.spec import NWBNamespaceBuilder, export_spec

    try:
        return [get_class(t.neurodata_type_def, name) for t in types]
    except (KeyError, ValueError):
        pass
    builder = NWBNamespaceBuilder(doc=f"{name} (test copy of the layout)", name=name, version="0.1.0",
                                  author=["neuroaikit tests"], contact=["none"])
    for included in includes:
        builder.include_type(included, namespace="core")
    folder = directory / name
    folder.mkdir(exist_ok=True)
    export_spec(builder, types, str(folder))
    load_namespaces(str(folder / f"{name}.namespace.yaml"))
    return [get_class(t.neurodata_type_def, name) for t in types]


def _ellipse_classes(directory):
    """``EllipseSeries`` and ``EllipseEyeTracking`` as AllenSDK's ``ndx-ellipse-eye-tracking``
    spec defines them (allensdk/brain_observatory/nwb/eye_tracking/
    ndx-ellipse-eye-tracking.extensions.yaml): an ``EllipseSeries`` is a ``SpatialSeries`` whose
    (n, 2) data is the centre, with ``area`` (NaN at likely blinks), ``area_raw``, ``width``,
    ``height``, ``angle``; ``EllipseEyeTracking`` extends the core ``EyeTracking`` with the
    ``eye_tracking``, ``pupil_tracking`` and ``corneal_reflection_tracking`` ellipses and a
    ``likely_blink`` ``TimeSeries``."""
    from pynwb.spec import NWBDatasetSpec, NWBGroupSpec

    fields = [NWBDatasetSpec(name="data", dtype="numeric", dims=("num_times", "x, y"), shape=(None, 2), doc="centre")]
    fields += [NWBDatasetSpec(name=f, dtype="float", shape=(None,), doc=f) for f in ("area", "area_raw", "width", "height", "angle")]
    series = NWBGroupSpec(neurodata_type_def="EllipseSeries", neurodata_type_inc="SpatialSeries", doc="an ellipse over time",
                          datasets=fields)
    tracking = NWBGroupSpec(neurodata_type_def="EllipseEyeTracking", neurodata_type_inc="EyeTracking",
                            default_name="EyeTracking", doc="eye, pupil and corneal reflection ellipses",
                            groups=[NWBGroupSpec(name=g, neurodata_type_inc="EllipseSeries", doc=g)
                                    for g in ("eye_tracking", "pupil_tracking", "corneal_reflection_tracking")]
                            + [NWBGroupSpec(name="likely_blink", neurodata_type_inc="TimeSeries", doc="blink frames")])
    return _extension(directory, "ndx-ellipse-eye-tracking", [series, tracking], ["SpatialSeries", "EyeTracking", "TimeSeries"])


@pytest.mark.filterwarnings("ignore::hdmf.build.warnings.MissingRequiredBuildWarning")
def test_allen_ellipse_eye_tracking_gives_pupil_centre_and_area(tmp_path):
    """Allen's layout (``acquisition/EyeTracking``, an ``EllipseEyeTracking`` of three
    ``EllipseSeries``): the centre is ``pupil_tracking``'s data, not the eye's or the corneal
    reflection's; the size is its ``area`` (NaN at blinks, left out of the means)."""
    from pynwb import TimeSeries

    ellipse_series, ellipse_tracking = _ellipse_classes(tmp_path)
    centre, area, _ = _eye_samples()
    n = len(EYE_STAMPS)

    def ellipse(name, data, area):
        return ellipse_series(name=name, data=data, timestamps=EYE_STAMPS, reference_frame="camera", unit="px", area=area,
                              area_raw=np.nan_to_num(area, nan=1.0), width=np.full(n, 30.0), height=np.full(n, 20.0),
                              angle=np.zeros(n))

    def add(nwb):
        nwb.add_acquisition(ellipse_tracking(
            eye_tracking=ellipse("eye_tracking", centre + 40, np.full(n, 9000.0)),
            pupil_tracking=ellipse("pupil_tracking", centre, area),
            corneal_reflection_tracking=ellipse("corneal_reflection_tracking", centre - 30, np.full(n, 50.0)),
            likely_blink=TimeSeries(name="likely_blink", data=np.zeros(n, bool), timestamps=EYE_STAMPS, unit="N/A")))

    _frame_rate_file(tmp_path / "allen_eye.nwb", add=add)
    ds = load_nwb(tmp_path / "allen_eye.nwb")
    np.testing.assert_allclose(ds.pupil_center, _window_means(centre, EYE_STAMPS), rtol=1e-6)
    np.testing.assert_allclose(ds.behavior[:, 0], _window_means(area, EYE_STAMPS), rtol=1e-6)
    assert ds.behavior.shape == (6, 2) and np.isfinite(ds.behavior).all()


def test_nwb_errors(tmp_path):
    _frame_rate_file(tmp_path / "no_images.nwb", with_images=False)
    with pytest.raises(DataError, match="no stimulus images"):
        load_nwb(tmp_path / "no_images.nwb")
    bad = tmp_path / "bad.nwb"
    bad.write_text("nope")
    with pytest.raises(DataError, match="not a readable NWB"):
        load_nwb(bad)


def test_allen_style_presentations_table_and_suite2p_nwb_log(tmp_path):
    """An Allen Brain Observatory layout (no trials table: a ``natural_scenes_presentations``
    intervals table with a ``frame`` column, -1 for a blank sweep, images in the stimulus
    templates) is found both by the NWB reader and as the stimulus log of a suite2p recording."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries

    from neuroaikit.neural.nwb import open_nwb, presentation_table

    nwb = NWBFile(session_description="t", identifier="t", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    images = np.random.default_rng(0).random((3, 5, 5)).astype(np.float32)
    nwb.add_stimulus_template(ImageSeries(name="natural_scenes_image_stack", data=images, unit="a.u.", rate=1.0,
                                          format="raw"))
    table = TimeIntervals(name="natural_scenes_presentations", description="scenes")
    table.add_column("frame", "image index")
    for i, f in enumerate([0, 1, -1, 2, 0]):  # frame -1: a blank sweep, as the Brain Observatory marks them
        table.add_row(start_time=1.0 + i, stop_time=1.25 + i, frame=f)
    nwb.add_time_intervals(table)
    with NWBHDF5IO(str(tmp_path / "log.nwb"), "w") as io:
        io.write(nwb)
    with open_nwb(tmp_path / "log.nwb") as f:
        assert presentation_table(f, tmp_path / "log.nwb").name == "natural_scenes_presentations"
    from neuroaikit.neural.suite2p import _read_nwb_log

    log = _read_nwb_log(tmp_path / "log.nwb")
    np.testing.assert_allclose(log["onset"], [1.0, 2.0, 4.0, 5.0])  # the blank sweep left out
    assert log["image_id"].tolist() == [0, 1, 2, 0] and log["images"].shape == (3, 5, 5)


# -- Allen Visual Behavior ophys layout, as AllenSDK writes it ------------------------------------
#
# Checked against the AllenSDK source (no real Allen file was at hand): names, nesting, columns and
# dtypes follow allensdk/brain_observatory/behavior/data_objects/ (cell_specimens/cell_specimens.py,
# cell_specimens/traces/*.py, cell_specimens/events.py, stimuli/presentations.py, stimuli/templates.py,
# stimuli/fingerprint_stimulus.py, running_speed/running_speed.py, eye_tracking/eye_tracking_table.py),
# allensdk/brain_observatory/nwb/__init__.py and the extension specs under
# allensdk/brain_observatory/behavior/write_nwb/extensions/ and allensdk/brain_observatory/nwb/eye_tracking/.

ALLEN_WARNINGS = [pytest.mark.filterwarnings("ignore::hdmf.build.warnings.MissingRequiredBuildWarning")]
#: the image set, in the set's own order (not sorted): presentations name images, the template's
#: control_description names its frames
ALLEN_IMAGES = ["im104", "im065", "im114", "im077"]
#: the shown sequence (a flash every 0.75 s, 0.25 s on); "omitted" flashes show the gray screen
ALLEN_SHOWN = ["im065", "im065", "im104", "omitted", "im104", "im114", "im077", "omitted", "im077", "im065",
               "im114", "im114", "omitted", "im104"]
ALLEN_ROIS = [(1080, 5001, True), (1081, -1, False), (1085, 5003, True), (1090, 5004, True)]  # cell_roi_id, csid, valid
OPHYS_STAMPS = np.arange(0.4, 12.5, 1 / 31)  # 31 Hz two-photon frames
ALLEN_EYE_STAMPS = np.arange(0.0, 12.5, 1 / 60)


def _allen_extensions(directory):
    """``StimulusTemplate`` (ndx-aibs-stimulus-template: an ``ImageSeries`` of warped images plus
    ``unwarped`` ones) and ``OphysEventDetection`` (ndx-aibs-ophys-event-detection: a
    ``RoiResponseSeries`` named ``event_detection`` with ``lambdas`` and ``noise_stds``)."""
    from pynwb.spec import NWBDatasetSpec, NWBGroupSpec

    template = NWBGroupSpec(neurodata_type_def="StimulusTemplate", neurodata_type_inc="ImageSeries", doc="warped images",
                            datasets=[NWBDatasetSpec(name="unwarped", dtype="float", shape=(None, None, None),
                                                     doc="images masked to the seen pixels")])
    events = NWBGroupSpec(neurodata_type_def="OphysEventDetection", neurodata_type_inc="RoiResponseSeries",
                          name="event_detection", doc="detected events",
                          datasets=[NWBDatasetSpec(name=n, dtype="float", shape=(None,), doc=n) for n in ("lambdas", "noise_stds")])
    (stimulus_template,) = _extension(directory, "ndx-aibs-stimulus-template", [template], ["ImageSeries"])
    (event_detection,) = _extension(directory, "ndx-aibs-ophys-event-detection", [events], ["RoiResponseSeries"])
    return stimulus_template, event_detection


def _allen_presentations():
    """The behaviour presentations as AllenSDK's Presentations holds them before writing:
    (start, stop, image name, image index, omitted) per flash; an omitted flash has the index
    one past the image set and a stop 0.25 s after its start."""
    start = 0.5 + 0.75 * np.arange(len(ALLEN_SHOWN))
    omitted = np.array([n == "omitted" for n in ALLEN_SHOWN])
    index = np.array([len(ALLEN_IMAGES) if n == "omitted" else ALLEN_IMAGES.index(n) for n in ALLEN_SHOWN])
    return start, start + 0.25, np.array(ALLEN_SHOWN), index, omitted


def _allen_file(path, split_by_image_name=False, shown=None, omitted_stop=True):
    """A small Visual Behavior ophys experiment laid out as AllenSDK writes one. Returns the
    arrays the loader should read back. ``split_by_image_name``: one ``*_presentations`` table per
    image name, as older AllenSDK's ``add_stimulus_presentations`` wrote the behaviour table (no
    ``stimulus_name`` column); ``omitted_stop=False``: omitted flashes keep a NaN stop time (the
    table read from a precomputed CSV is not filled in)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.base import Images
    from pynwb.epoch import TimeIntervals
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    stimulus_template, event_detection = _allen_extensions(path.parent)
    ellipse_series, ellipse_tracking = _ellipse_classes(path.parent)
    rng = np.random.default_rng(7)
    nwb = NWBFile(session_description="OPHYS_3_images_B", identifier="951980471",
                  session_start_time=datetime(2019, 9, 20, tzinfo=timezone.utc), institution="Allen Institute for Brain Science")
    # stimulus frame times, referenced by every presentation row
    frames = np.arange(0.0, 12.5, 1 / 60)
    stimulus = nwb.create_processing_module("stimulus", "Stimulus Times processing")
    frame_times = TimeSeries(name="timestamps", data=frames, timestamps=frames, unit="s")
    stimulus.add(frame_times)
    # the image set: warped (as shown) in data, unwarped with NaN outside the seen part
    warped = rng.integers(0, 256, (len(ALLEN_IMAGES), 6, 8)).astype(np.uint8)
    unwarped = warped.astype(np.float64)
    unwarped[:, :, :2] = np.nan
    set_name = "Natural_Images_Lum_Matched_set_ophys_G_2019"
    nwb.add_stimulus_template(stimulus_template(
        name=set_name, data=warped, unwarped=unwarped, control=np.arange(len(ALLEN_IMAGES), dtype=np.uint8),
        control_description=ALLEN_IMAGES, unit="NA", format="raw", timestamps=np.full(len(ALLEN_IMAGES), np.nan)))
    # presentations: per stimulus name (here: the image set, a gray spontaneous block, the fingerprint movie)
    start, stop, names, index, omitted = _allen_presentations()
    if shown is not None:
        names = np.array(shown)
    if not omitted_stop:
        stop = np.where(omitted, np.nan, stop)
    columns = {
        "duration": (stop - start, "float"), "end_frame": (np.where(omitted, np.nan, np.round(stop * 60)), "float"),
        "flashes_since_change": (np.arange(len(names)) % 5.0, "float"), "image_index": (index, "int"),
        "image_name": (names, "str"), "image_set": (np.where(omitted, "omitted", set_name), "str"),
        "is_change": ((np.arange(len(names)) % 5 == 0).astype(float), "float"),  # nullable booleans are written as floats
        "omitted": (omitted, "bool"), "start_frame": (np.round(start * 60).astype(np.int64), "int"),
        "stimulus_block": (np.zeros(len(names), np.int64), "int"), "stimulus_name": (np.full(len(names), set_name), "str"),
    }
    groups = {set_name: np.ones(len(names), bool)}
    if split_by_image_name:  # older files: no stimulus name or block, one table per image name
        groups = {n: names == n for n in sorted(set(names))}
        del columns["stimulus_name"], columns["stimulus_block"]
    for group, rows in groups.items():
        table = TimeIntervals(name=f"{group}_presentations", description=f"Presentation times and stimuli details for '{group}'")
        for column in columns:
            table.add_column(name=column, description="No description")
        for i in np.flatnonzero(rows):
            table.add_interval(start_time=float(start[i]), stop_time=float(stop[i]), tags="stimulus_time_interval",
                               timeseries=[frame_times], **{c: (v[i].item() if hasattr(v[i], "item") else v[i])
                                                            for c, (v, _) in columns.items()})
        nwb.add_time_intervals(table)
    gray = TimeIntervals(name="spontaneous_presentations", description="gray screen")
    for c in ("duration", "stimulus_block", "stimulus_name"):
        gray.add_column(name=c, description=c)
    gray.add_interval(start_time=11.5, stop_time=11.9, duration=0.4, stimulus_block=1, stimulus_name="spontaneous",
                      tags="stimulus_time_interval", timeseries=[frame_times])
    nwb.add_time_intervals(gray)
    movie = TimeIntervals(name="natural_movie_one_presentations", description="fingerprint movie")
    for c in ("movie_frame_index", "movie_repeat", "stimulus_block", "stimulus_name"):
        movie.add_column(name=c, description=c)
    for k in range(3):
        movie.add_interval(start_time=12.0 + k / 30, stop_time=12.0 + (k + 1) / 30, movie_frame_index=k, movie_repeat=0,
                           stimulus_block=2, stimulus_name="natural_movie_one", tags="stimulus_time_interval",
                           timeseries=[frame_times])
    nwb.add_time_intervals(movie)
    # change-detection trials: no image column, a ragged lick column
    nwb.add_trial_column("initial_image_name", "image before the change")
    nwb.add_trial_column("change_image_name", "image after the change")
    nwb.add_trial_column("go", "go trial")
    nwb.add_trial_column("lick_times", "lick times", index=True)
    nwb.add_trial(start_time=0.4, stop_time=6.0, initial_image_name="im065", change_image_name="im104", go=True, lick_times=[3.1])
    nwb.add_trial(start_time=6.0, stop_time=11.0, initial_image_name="im077", change_image_name="im065", go=False, lick_times=[])
    # ophys: cell_specimen_table (ids are cell_roi_id), dF/F, corrected fluorescence, neuropil, events
    device = nwb.create_device(name="CAM2P.4")
    plane = nwb.create_imaging_plane(
        name="imaging_plane_1", optical_channel=OpticalChannel(name="channel_1", description="2P Optical Channel", emission_lambda=520.0),
        description="(512, 512) field of view in VISp at depth 175 um", device=device, excitation_lambda=910.0,
        imaging_rate=31.0, indicator="GCaMP6f", location="VISp")
    ophys = nwb.create_processing_module("ophys", "Ophys processing module")
    segmentation = ImageSegmentation(name="image_segmentation")
    ophys.add(segmentation)
    cells = segmentation.create_plane_segmentation(name="cell_specimen_table", description="Segmented rois", imaging_plane=plane)
    for c in ("cell_specimen_id", "height", "mask_image_plane", "max_correction_down", "valid_roi", "width", "x", "y"):
        cells.add_column(name=c, description=c)
    for k, (roi_id, specimen, valid) in enumerate(ALLEN_ROIS):
        mask = np.zeros((16, 16), bool)
        mask[k:k + 3, k:k + 3] = True
        cells.add_roi(id=roi_id, image_mask=mask, cell_specimen_id=specimen, height=3, mask_image_plane=0,
                      max_correction_down=2.0, valid_roi=valid, width=3, x=k, y=k)
    n_rois = len(ALLEN_ROIS)
    region = cells.create_roi_table_region(description="segmented cells labeled by cell_specimen_id", region=slice(n_rois))
    dff = rng.normal(size=(len(OPHYS_STAMPS), n_rois)) + np.arange(n_rois)
    dff_interface = DfOverF(name="dff")
    ophys.add(dff_interface)
    traces = dff_interface.create_roi_response_series(name="traces", data=dff, unit="NA", rois=region, timestamps=OPHYS_STAMPS)
    corrected = 200 + 10 * dff
    for container, data in ((Fluorescence(name="corrected_fluorescence"), corrected),
                            (Fluorescence(name="neuropil_trace"), corrected / 2)):
        ophys.add(container)
        container.create_roi_response_series(name="traces", data=data, unit="NA", rois=region, timestamps=traces.timestamps)
    with_events = [2, 0]  # rows of the cells with events, not in table order
    ophys.add(event_detection(data=np.abs(dff[:, with_events]), lambdas=[0.1, 0.2], noise_stds=[0.01, 0.02], unit="N/A",
                              rois=cells.create_roi_table_region(description="Cells with detected events", region=with_events),
                              timestamps=traces.timestamps))
    ophys.add(Images(name="images", images=[GrayscaleImage(name="max_projection", data=rng.random((16, 16)), resolution=0.78)]))
    # running: filtered speed, unfiltered speed and wheel dx in processing/running; raw voltages in acquisition
    wheel = np.arange(0.0, 12.5, 1 / 60)
    speed = 20 + 5 * np.sin(wheel)
    running = nwb.create_processing_module("running", "Running speed processing module")
    running.add(TimeSeries(name="speed", data=speed, timestamps=wheel, unit="cm/s"))
    running.add(TimeSeries(name="speed_unfiltered", data=speed + 50, timestamps=wheel, unit="cm/s"))
    running.add(TimeSeries(name="dx", data=np.gradient(speed), timestamps=wheel, unit="cm"))
    nwb.add_acquisition(TimeSeries(name="v_sig", data=np.ones(len(wheel)), timestamps=wheel, unit="V"))
    nwb.add_acquisition(TimeSeries(name="v_in", data=np.full(len(wheel), 5.0), timestamps=wheel, unit="V"))
    # eye tracking: ellipses in camera pixels; area NaN at likely blinks (the centre is not), timestamps linked
    t = ALLEN_EYE_STAMPS
    n = len(t)
    centre = np.stack([320 + 6 * np.sin(t), 240 + 4 * np.cos(2 * t)], 1)
    area_raw = 1500 + 300 * np.sin(0.7 * t) ** 2
    blink = ((t > 2.05) & (t < 2.3)) | ((t > 7.6) & (t < 7.75))  # inside flashes 2 and 9 (im104 and im065)
    centre[blink] = 0.0  # the fit lost the pupil: the centre holds a junk value, not NaN
    area = np.where(blink, np.nan, area_raw)

    def ellipse(name, data, area, area_raw, timestamps):
        return ellipse_series(name=name, reference_frame="nose", data=data, area=area, area_raw=area_raw,
                              width=np.full(n, 30.0), height=np.full(n, 25.0), angle=np.zeros(n), timestamps=timestamps)

    eye = ellipse("eye_tracking", centre + 50, np.full(n, 9e4), np.full(n, 9e4), t)
    nwb.add_acquisition(ellipse_tracking(
        eye_tracking=eye, pupil_tracking=ellipse("pupil_tracking", centre, area, area_raw, eye),
        corneal_reflection_tracking=ellipse("corneal_reflection_tracking", centre - 20, np.full(n, 40.0), np.full(n, 40.0), eye),
        likely_blink=TimeSeries(name="likely_blink", data=blink, timestamps=eye, description="blinks", unit="N/A")))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return {"start": start, "stop": stop, "names": names, "omitted": omitted, "warped": warped, "dff": dff,
            "corrected": corrected, "wheel": wheel, "speed": speed, "centre": centre, "area": area, "blink": blink}


def _windows(values, stamps, start, stop):
    """Direct per-presentation means of ``values`` over the samples in [start, stop), NaN left out."""
    return np.array([np.nanmean(values[(stamps >= a) & (stamps < b)], 0) for a, b in zip(start, stop)])


@pytest.mark.parametrize("split_by_image_name", [False, True], ids=["one_table_per_stimulus", "one_table_per_image_name"])
@ALLEN_WARNINGS[0]
def test_allen_visual_behavior_ophys_layout(tmp_path, split_by_image_name):
    """A Visual Behavior ophys file as AllenSDK writes it: the image flashes are read from the
    ``*_presentations`` table(s) with an ``image_name`` (one per stimulus, or one per image name as
    older AllenSDK wrote them), in time order, omitted flashes (index one past the image set)
    left out; names are matched to the template's ``control_description`` (its data: the warped
    images); the responses are the dF/F traces (not the corrected fluorescence or neuropil
    traces, also named ``traces``, nor the events) of the valid ROIs, averaged within each flash;
    ids are the
    ``cell_roi_id``s; behaviour is pupil area (NaN at blinks left out), its derivative and
    running ``speed``; the pupil centre leaves out the frames ``likely_blink`` flags."""
    path = tmp_path / "behavior_ophys_experiment_951980471.nwb"
    arrays = _allen_file(path, split_by_image_name=split_by_image_name, omitted_stop=not split_by_image_name)
    ds = load_nwb(path)
    shown = ~arrays["omitted"]
    start, stop = arrays["start"][shown], arrays["stop"][shown]
    valid = np.array([v for _, _, v in ALLEN_ROIS])
    np.testing.assert_allclose(ds.responses, _windows(arrays["dff"], OPHYS_STAMPS, start, stop)[:, valid], rtol=1e-5)
    assert ds.response_kind == "dff/traces"
    assert ds.trial_ids.tolist() == np.flatnonzero(shown).tolist()
    assert ds.unit_ids.tolist() == [r for r, _, v in ALLEN_ROIS if v]
    assert ds.neuron_meta["cell_specimen_id"].tolist() == [c for _, c, v in ALLEN_ROIS if v]
    # images: the warped stack, in the set's order; each flash shows the image its name says
    np.testing.assert_array_equal(ds.stimuli, arrays["warped"].astype(np.float32))
    assert ds.info["image_names"] == ALLEN_IMAGES
    np.testing.assert_array_equal(ds.trial_stimuli()[:, 0], arrays["warped"][[ALLEN_IMAGES.index(n) for n in arrays["names"][shown]]])
    assert ds.image_ids.tolist() == [ALLEN_IMAGES.index(n) for n in arrays["names"][shown]]
    # behaviour: pupil area and its derivative (from the eye camera), then running speed
    area, centre, blink = arrays["area"], arrays["centre"], arrays["blink"]
    assert ds.behavior.shape == (len(start), 3)
    np.testing.assert_allclose(ds.behavior[:, 0], _windows(area, ALLEN_EYE_STAMPS, start, stop), rtol=1e-5)
    np.testing.assert_allclose(ds.behavior[:, 1], _windows(np.gradient(area, ALLEN_EYE_STAMPS), ALLEN_EYE_STAMPS, start, stop),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ds.behavior[:, 2], _windows(arrays["speed"], arrays["wheel"], start, stop), rtol=1e-5)
    expected_centre = _windows(np.where(blink[:, None], np.nan, centre), ALLEN_EYE_STAMPS, start, stop)
    np.testing.assert_allclose(ds.pupil_center, expected_centre, rtol=1e-6)
    assert np.abs(ds.pupil_center - _windows(centre, ALLEN_EYE_STAMPS, start, stop)).max() > 10  # blinks mattered
    # the other traces by their container's name; "traces" alone names three series
    corrected = load_nwb(path, series="corrected_fluorescence")
    np.testing.assert_allclose(corrected.responses, _windows(arrays["corrected"], OPHYS_STAMPS, start, stop)[:, valid], rtol=1e-5)
    with pytest.raises(DataError, match=r"3 RoiResponseSeries match 'traces' \(\['corrected_fluorescence/traces', 'dff/traces', "
                                        r"'neuropil_trace/traces'\]\); name one as container/series$"):
        load_nwb(path, series="traces")
    events = load_nwb(path, series="event_detection")  # a subset of the ROIs, in its own order
    assert events.unit_ids.tolist() == [1085, 1080] and events.n_neurons == 2


@ALLEN_WARNINGS[0]
def test_allen_presentations_naming_images_the_template_lacks(tmp_path):
    """A flash whose ``image_name`` is not among the template's names (a mismatched image set)
    is one clear line naming it, not a silent use of ``image_index``."""
    shown = list(ALLEN_SHOWN)
    shown[4] = "im999"
    _allen_file(tmp_path / "mismatch.nwb", shown=shown)
    with pytest.raises(DataError, match=r"mismatch\.nwb: 1 image name\(s\) of the presentations \(first: \['im999'\]\) are not "
                                        r"among the 4 names of the stimulus images 'Natural_Images_Lum_Matched_set_ophys_G_2019'$"):
        load_nwb(tmp_path / "mismatch.nwb")


@ALLEN_WARNINGS[0]
def test_allen_visual_behavior_file_as_the_stimulus_log_of_a_suite2p_recording(tmp_path):
    """The same file as a suite2p recording's stimulus log: omitted flashes are left out, the
    flashes' images are matched by name (not by the ``image_index`` Allen puts past the set for
    an omission), and the eye and running series give behaviour and pupil per flash."""
    from neuroaikit.neural.suite2p import _read_nwb_log

    path = tmp_path / "behavior_ophys_experiment_951980471.nwb"
    arrays = _allen_file(path)
    log = _read_nwb_log(path)
    shown = ~arrays["omitted"]
    np.testing.assert_allclose(log["onset"], arrays["start"][shown])
    assert log["image_id"].tolist() == [ALLEN_IMAGES.index(n) for n in arrays["names"][shown]]
    assert log["stimulus_index"].tolist() == log["image_id"].tolist()
    np.testing.assert_array_equal(log["images"], arrays["warped"].astype(np.float32))
    assert log["behavior"].shape == (int(shown.sum()), 3) and log["pupil_center"].shape == (int(shown.sum()), 2)


def test_an_nwb_stimulus_log_without_images_leaves_them_to_images_npy(tmp_path):
    """A stimulus log holding only the presentations (no stimulus templates) is still a log:
    the suite2p recording then takes its images from ``images.npy``."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals

    from neuroaikit.neural.suite2p import _read_nwb_log

    nwb = NWBFile(session_description="t", identifier="t", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    table = TimeIntervals(name="natural_scenes_presentations", description="scenes")
    table.add_column("frame", "image index")
    for i, f in enumerate([2, -1, 0, 1]):
        table.add_row(start_time=1.0 + i, stop_time=1.25 + i, frame=f)
    nwb.add_time_intervals(table)
    with NWBHDF5IO(str(tmp_path / "log.nwb"), "w") as io:
        io.write(nwb)
    log = _read_nwb_log(tmp_path / "log.nwb")
    assert "images" not in log
    assert log["image_id"].tolist() == [2, 0, 1] and log["stimulus_index"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(log["onset"], [1.0, 3.0, 4.0])
    with pytest.raises(DataError, match=r"log\.nwb: no stimulus images"):
        load_nwb(tmp_path / "log.nwb")


# -- Allen Brain Observatory Visual Coding ophys as NWB 2 (DANDI 000728) --------------------------
#
# Names follow the converter that wrote DANDI 000728 (catalystneuro/visual-coding-to-nwb-v2, as read
# through the code search, not a real file): the natural scenes are an IndexSeries with onsets only,
# indexing an Images container of GrayscaleImages "NaturalScene0".."NaturalScene117" (no
# order_of_images); dF/F and the neuropil trace link their timestamps to Fluorescence/Corrected.

VC_STAMPS = np.arange(0.0, 20.0, 1 / 30)  # 30 Hz two-photon frames
VC_N_IMAGES = 12  # more than 10: the file lists NaturalScene10 before NaturalScene2


def _visual_coding_file(path, clipped_blanks=0, scenes_name="natural_scenes_stimulus", with_scenes=True):
    """``clipped_blanks``: that many blank sweeps stored as scene 0 (the converter's cast clips -1
    to 0), beside scene 0's own showings; ``scenes_name`` names the scenes' index series;
    ``with_scenes=False`` leaves only the natural movie's (a session without natural scenes)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
    from pynwb.image import GrayscaleImage, Images, IndexSeries
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

    rng = np.random.default_rng(3)
    nwb = NWBFile(session_description="t", identifier="t", session_start_time=datetime(2016, 1, 1, tzinfo=timezone.utc))
    scenes = (rng.random((VC_N_IMAGES, 6, 8)) * 255).astype(np.uint8)
    template = Images(name="natural_scenes_template", description="scenes",
                      images=[GrayscaleImage(name=f"NaturalScene{i}", data=img) for i, img in enumerate(scenes)])
    nwb.add_stimulus_template(template)
    movie = Images(name="natural_movie_one_template", description="movie frames",
                   images=[GrayscaleImage(name=f"frame{i}", data=rng.random((6, 8))) for i in range(5)])
    nwb.add_stimulus_template(movie)
    # two blocks of back-to-back 0.25 s flashes, each image shown 3 times; one blank sweep
    # (-1 stored unsigned) in the first block
    shown = np.concatenate([rng.permutation(VC_N_IMAGES), rng.permutation(VC_N_IMAGES), rng.permutation(VC_N_IMAGES)])
    shown = np.insert(shown, [2, 9, 20, 30][:clipped_blanks], 0)
    index = shown.astype(np.uint32)
    index[5] = np.iinfo(np.uint32).max
    onsets = np.concatenate([1.0 + 0.25 * np.arange(18), 8.0 + 0.25 * np.arange(len(shown) - 18)])
    if with_scenes:
        nwb.add_stimulus(IndexSeries(name=scenes_name, data=index, indexed_images=template, unit="N/A",
                                     timestamps=onsets))
    nwb.add_stimulus(IndexSeries(name="natural_movie_one_stimulus", data=np.arange(5, dtype=np.uint32),
                                 indexed_images=movie, unit="N/A", timestamps=15.0 + np.arange(5) / 30))
    device = nwb.create_device(name="Microscope")
    plane = nwb.create_imaging_plane(name="ImagingPlane", optical_channel=OpticalChannel(name="g", description="g", emission_lambda=520.0),
                                     description="p", device=device, excitation_lambda=910.0, indicator="GCaMP6f", location="VISp",
                                     imaging_rate=30.0)
    seg = ImageSegmentation()
    rois = seg.create_plane_segmentation(name="PlaneSegmentation", description="r", imaging_plane=plane)
    rois.add_column("global_roi_id", "cell specimen id")
    for k, csid in enumerate([517472416, 517472450, 517472458]):
        rois.add_roi(id=csid, pixel_mask=[(k, k, 1.0)], global_roi_id=csid)
    ophys = nwb.create_processing_module("ophys", "o")
    ophys.add(seg)
    region = rois.create_roi_table_region(region=[0, 1, 2], description="all")
    corrected = rng.random((len(VC_STAMPS), 3)).astype(np.float32) + 100
    dff = rng.standard_normal((len(VC_STAMPS), 3)).astype(np.float32)
    fluorescence = Fluorescence(name="Fluorescence")
    base = fluorescence.create_roi_response_series(name="Corrected", data=corrected, rois=region, unit="NA", timestamps=VC_STAMPS)
    fluorescence.create_roi_response_series(name="Neuropil", data=corrected - 50, rois=region, unit="NA", timestamps=base)
    ophys.add(fluorescence)
    ophys.add(DfOverF(name="DfOverF", roi_response_series=RoiResponseSeries(name="DfOverF", data=dff, rois=region, unit="NA",
                                                                             timestamps=base)))
    behavior = nwb.create_processing_module("behavior", "b")
    speed = rng.random(len(VC_STAMPS)) * 10
    behavior.add(BehavioralTimeSeries(time_series=TimeSeries(name="running_speed", data=speed, unit="cm/s", timestamps=VC_STAMPS)))
    size = 900 + rng.random(len(VC_STAMPS))
    behavior.add(PupilTracking(time_series=TimeSeries(name="pupil_size", data=size, unit="px", timestamps=VC_STAMPS)))
    location = rng.random((len(VC_STAMPS), 2)) * 1e-3
    behavior.add(EyeTracking(spatial_series=SpatialSeries(name="pupil_location", data=location, reference_frame="screen centre",
                                                          unit="meters", timestamps=VC_STAMPS)))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    stop = np.append(np.where(np.diff(onsets) <= 0.375, onsets[1:], onsets[:-1] + 0.25), onsets[-1] + 0.25)
    return {"scenes": scenes, "shown": shown, "onsets": onsets, "stop": stop, "dff": dff, "speed": speed, "size": size,
            "location": location}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_allen_visual_coding_nwb2_natural_scenes(tmp_path, caplog):
    """The Visual Coding layout of DANDI 000728: presentations from the ``natural_scenes_stimulus``
    IndexSeries (each flash until the next onset; the block's last one a median interval; the
    unsigned blank sweep left out), not the natural movie's (its frames 1/30 s apart); scenes in their numbered order, not the
    file's alphabetical one; the responses the ``DfOverF`` series (linked timestamps); every scene
    repeats, so a fifth of them are the test tier and never seen in training."""
    path = tmp_path / "sub-1_ses-511510667-StimB_behavior+image+ophys.nwb"
    arrays = _visual_coding_file(path)
    with caplog.at_level("INFO"):
        ds = load_nwb(path)
    kept = np.ones(len(arrays["shown"]), bool)
    kept[5] = False
    start, stop = arrays["onsets"][kept], arrays["stop"][kept]
    assert ds.trial_ids.tolist() == np.flatnonzero(kept).tolist()
    assert ds.image_ids.tolist() == arrays["shown"][kept].tolist()
    np.testing.assert_array_equal(ds.stimuli, arrays["scenes"].astype(np.float32))
    np.testing.assert_array_equal(ds.trial_stimuli()[:, 0], arrays["scenes"][arrays["shown"][kept]])
    assert ds.response_kind == "DfOverF"  # not Fluorescence/Corrected nor Neuropil
    np.testing.assert_allclose(ds.responses, _windows(arrays["dff"], VC_STAMPS, start, stop), rtol=1e-5)
    assert ds.unit_ids.tolist() == [517472416, 517472450, 517472458]
    np.testing.assert_allclose(ds.behavior[:, 0], _windows(arrays["size"], VC_STAMPS, start, stop), rtol=1e-6)
    np.testing.assert_allclose(ds.behavior[:, 2], _windows(arrays["speed"], VC_STAMPS, start, stop), rtol=1e-6)
    np.testing.assert_allclose(ds.pupil_center, _windows(arrays["location"], VC_STAMPS, start, stop), rtol=1e-6)
    test_images, train_images = set(ds.image_ids[ds.tiers == "test"]), set(ds.image_ids[ds.tiers == "train"])
    assert len(test_images) == 2 and len(train_images) == VC_N_IMAGES - 2 and not test_images & train_images
    assert "presentations from the stimulus index series 'natural_scenes_stimulus'" in caplog.text
    # the movie's index series can be named; an unknown name lists both
    assert load_nwb(path, trials_table="natural_movie_one_stimulus").n_trials == 5
    with pytest.raises(DataError, match=r"no 'scenes' table; intervals tables: \[\], stimulus index series: "
                                        r"\['natural_movie_one_stimulus', 'natural_scenes_stimulus'\]$"):
        load_nwb(path, trials_table="scenes")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_visual_coding_blank_sweeps_clipped_to_scene_0_take_scene_0_out(tmp_path, caplog):
    """Blank sweeps that the conversion clipped to scene 0 double its showings: scene 0 is left
    out, with a warning saying why, and every other presentation is kept; the threshold is 1.5
    times the median image's showings (here 4.5 of 3: one extra showing stays below it)."""
    arrays = _visual_coding_file(tmp_path / "clipped.nwb", clipped_blanks=3)
    with caplog.at_level("WARNING"):
        ds = load_nwb(tmp_path / "clipped.nwb")
    kept = arrays["shown"] != 0
    kept[5] = False  # the blank stored at the unsigned maximum
    assert ds.trial_ids.tolist() == np.flatnonzero(kept).tolist() and 0 not in ds.image_ids
    assert "shows image 0 6 times, the median image 3 times" in caplog.text
    caplog.clear()
    _visual_coding_file(tmp_path / "fewer.nwb", clipped_blanks=1)
    with caplog.at_level("WARNING"):
        assert 0 in load_nwb(tmp_path / "fewer.nwb").image_ids
    assert "image 0" not in caplog.text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_image_0_shown_more_often_by_design_is_kept_outside_the_natural_scenes_series(tmp_path, caplog):
    """The clipped-blank rule is for the Visual Coding scenes only: another unsigned index series
    whose image 0 is shown twice as often (an oddball design) keeps every presentation."""
    arrays = _visual_coding_file(tmp_path / "oddball.nwb", clipped_blanks=3, scenes_name="oddball_stimulus")
    with caplog.at_level("WARNING"):
        ds = load_nwb(tmp_path / "oddball.nwb")
    assert (ds.image_ids == 0).sum() == (arrays["shown"] == 0).sum() - (arrays["shown"][5] == 0)
    assert "image 0" not in caplog.text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_movie_s_frames_are_not_read_as_trials_unless_named(tmp_path):
    """A session whose only stimulus index series is a movie (frames 1/30 s apart) is a one-line
    error rather than hundreds of 33 ms trials; naming the series reads it anyway."""
    _visual_coding_file(tmp_path / "movie.nwb", with_scenes=False)
    with pytest.raises(DataError, match=r"'natural_movie_one_stimulus' changes image every 0\.033 s, a movie's "
                                        r"frames rather than still images; trials_table="):
        load_nwb(tmp_path / "movie.nwb")
    assert load_nwb(tmp_path / "movie.nwb", trials_table="natural_movie_one_stimulus").n_trials == 5


def test_negative_image_ids_with_their_stimulus_rows_round_trip(tmp_path):
    """A negative image id beside a stimulus_index (the image's row) is an id, not a blank."""
    ds = SyntheticCortex(n_neurons=3, image_shape=(6, 8), seed=2).sample(n_train=8, n_validation=2, n_test_images=2,
                                                                         repeats=2)
    ds.image_ids = ds.image_ids - 100
    back = load_neural(write_nwb(ds, tmp_path / "negative.nwb"))
    np.testing.assert_array_equal(back.image_ids, ds.image_ids)
    np.testing.assert_allclose(back.responses, ds.responses)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_twin_fit_trains_on_a_visual_coding_file_without_tiers(tmp_path):
    """``twin fit`` on the Visual Coding layout, whose every scene repeats and which has no tier
    column, trains and scores its held-out scenes (before, every trial was test: nothing to fit)."""
    from neuroaikit.cli.main import main
    from neuroaikit.runs import Run

    path = tmp_path / "visual_coding.nwb"
    _visual_coding_file(path)
    out = tmp_path / "twin"
    assert main(["twin", "fit", str(path), "--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1",
                 "--threads", "1", "--no-baselines", "--no-report", "--out", str(out)]) == 0
    scores = Run.open(out).result("twin_eval")["models"]["twin"]
    assert np.isfinite(scores["single_trial_correlation"])


def test_presentation_tables_read_as_one_leave_out_a_column_that_is_text_in_one_and_numbers_in_another(caplog):
    from pathlib import Path

    from pynwb.epoch import TimeIntervals

    from neuroaikit.neural.nwb import _merged

    def table(name, starts, names, orientation):
        t = TimeIntervals(name=name)
        t.add_column("image_name", "image")
        t.add_column("orientation", "degrees or a label")
        for start, image, value in zip(starts, names, orientation):
            t.add_interval(start_time=start, stop_time=start + 0.25, image_name=image, orientation=value)
        return t

    caplog.set_level("INFO", logger="neuroaikit")
    merged = _merged(Path("s.nwb"), [("a_presentations", table("a_presentations", [0.0, 1.0], ["im0", "im1"], [0.0, 90.0])),
                                     ("b_presentations", table("b_presentations", [0.5], ["im2"], ["none"]))])
    assert merged["image_name"].data.tolist() == ["im0", "im2", "im1"]  # in time order
    assert "orientation" not in merged.colnames
    assert "column 'orientation' differs in type between the presentation tables, left out" in caplog.text
