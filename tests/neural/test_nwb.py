from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from neuroaikit.errors import DataError
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


def test_a_nan_frame_spoils_only_its_trial(tmp_path):
    """A NaN frame at 2.2 s lies in trial 2's window (2-2.5 s) only: the default stops naming the
    option; ``nan_policy="drop"`` leaves out that trial alone, the others as averaged."""
    t, trace = _frame_rate_file(tmp_path / "dropped_frame.nwb", nan_frame=22)
    with pytest.raises(DataError, match=r"'dff': responses hold NaN/inf in 1 trial\(s\) \(first: trial 2\); "
                                        r"leave them out with --drop-nan-trials \(twin fit, twin evaluate\)"):
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


def _ellipse_classes(directory):
    """``EllipseSeries`` and ``EllipseEyeTracking`` as the Allen Brain Observatory's
    ``ndx-ellipse-eye-tracking`` extension defines them (centre as data; area with NaN at blinks,
    width, height, angle), built from a spec written here: the extension is not on the package
    index. Files written with it carry the spec, as Allen's do."""
    from pynwb import get_class, load_namespaces
    from pynwb.spec import NWBDatasetSpec, NWBGroupSpec, NWBNamespaceBuilder, export_spec

    name = "ndx-ellipse-eye-tracking"
    try:
        return get_class("EllipseSeries", name), get_class("EllipseEyeTracking", name)
    except (KeyError, ValueError):
        pass
    builder = NWBNamespaceBuilder(doc="ellipse eye tracking (test copy of the layout)", name=name, version="0.1.0",
                                  author=["neuroaikit tests"], contact=["none"])
    builder.include_type("SpatialSeries", namespace="core")
    builder.include_type("NWBDataInterface", namespace="core")
    fields = [NWBDatasetSpec(name=f, dtype="float", shape=(None,), doc=f) for f in ("area", "width", "height", "angle")]
    series = NWBGroupSpec(neurodata_type_def="EllipseSeries", neurodata_type_inc="SpatialSeries", doc="an ellipse over time",
                          datasets=fields)
    tracking = NWBGroupSpec(neurodata_type_def="EllipseEyeTracking", neurodata_type_inc="NWBDataInterface",
                            default_name="EyeTracking", doc="eye, pupil and corneal reflection ellipses",
                            groups=[NWBGroupSpec(name=g, neurodata_type_inc="EllipseSeries", doc=g)
                                    for g in ("eye_tracking", "pupil_tracking", "corneal_reflection_tracking")])
    export_spec(builder, [series, tracking], str(directory))
    load_namespaces(str(directory / f"{name}.namespace.yaml"))
    return get_class("EllipseSeries", name), get_class("EllipseEyeTracking", name)


def test_allen_ellipse_eye_tracking_gives_pupil_centre_and_area(tmp_path):
    """Allen's layout (``acquisition/EyeTracking``, an ``EllipseEyeTracking`` of three
    ``EllipseSeries``): the centre is ``pupil_tracking``'s data, not the eye's or the corneal
    reflection's; the size is its ``area`` (NaN at blinks, left out of the means)."""
    ellipse_series, ellipse_tracking = _ellipse_classes(tmp_path)
    centre, area, _ = _eye_samples()
    n = len(EYE_STAMPS)

    def ellipse(name, data, area):
        return ellipse_series(name=name, data=data, timestamps=EYE_STAMPS, reference_frame="camera", unit="px", area=area,
                              width=np.full(n, 30.0), height=np.full(n, 20.0), angle=np.zeros(n))

    def add(nwb):
        nwb.add_acquisition(ellipse_tracking(
            eye_tracking=ellipse("eye_tracking", centre + 40, np.full(n, 9000.0)),
            pupil_tracking=ellipse("pupil_tracking", centre, area),
            corneal_reflection_tracking=ellipse("corneal_reflection_tracking", centre - 30, np.full(n, 50.0))))

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
    intervals table with a ``frame`` column, images in the stimulus templates) is found both by
    the NWB reader and as the stimulus log of a suite2p recording."""
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
    for i, f in enumerate([0, 1, 2, 0]):
        table.add_row(start_time=1.0 + i, stop_time=1.25 + i, frame=f)
    nwb.add_time_intervals(table)
    with NWBHDF5IO(str(tmp_path / "log.nwb"), "w") as io:
        io.write(nwb)
    with open_nwb(tmp_path / "log.nwb") as f:
        assert presentation_table(f, tmp_path / "log.nwb").name == "natural_scenes_presentations"
    from neuroaikit.neural.suite2p import _read_nwb_log

    log = _read_nwb_log(tmp_path / "log.nwb")
    np.testing.assert_allclose(log["onset"], [1.0, 2.0, 3.0, 4.0])
    assert log["image_id"].tolist() == [0, 1, 2, 0] and log["images"].shape == (3, 5, 5)
