"""``neuroaikit twin fit|evaluate|probe``: digital twin of mouse visual cortex."""

from __future__ import annotations

from .options import add_execution_arguments, add_output_arguments, add_quiet_argument, whole_number_or

NAME = "twin"
HELP = "fit, evaluate and probe a digital twin (core + readout) of mouse visual cortex"
DESCRIPTION = """\
A digital twin predicts each neuron's response to any image. It is a convolutional core
shared by all neurons plus a Gaussian readout (each neuron reads the core at its learned
receptive-field position), fitted with the Sensorium recipe (Poisson loss, Adam, early
stopping on validation correlation, learning-rate decay).

  fit DATA [DATA ...]
                     fit a twin, evaluate it on the test tier beside the pixel-ridge
                     baseline (--ln-baseline: the LN model too) and write a run folder with
                     report.html. Several recordings (mice) share one core, each with its
                     own readout; --core-from RUN trains only readouts on RUN's frozen core.
  evaluate RUN_DIR [DATA ...]
                     Sensorium metrics, per mouse for a twin of several, (single-trial correlation, correlation to average,
                     FEVE, oracle, fraction of oracle) on DATA (default: the fit's data);
                     --ensemble-with RUN ... also scores the mean of several twins' predictions.
  probe RUN_DIR      in-silico experiments: orientation / spatial-frequency tuning from
                     gratings, receptive fields (gradients, reverse correlation), most
                     exciting inputs; figures in report.html.

--time-limit bounds the whole command (loading, baselines, fit, scoring); each epoch line
shows the validation r and the time left. A limit that leaves no time to train once the
scoring is set aside skips the receptive-field recovery (synthetic data); one too short even
to score the twin is overrun, and a note before training says by about how much.

DATA is a Sensorium FileTree folder or .zip, an .nwb file, a suite2p folder or CaImAn's
saved .hdf5 with its stimulus log (see 'neuroaikit twin fit --help'), a recording .json/.yaml
naming a suite2p folder or a CaImAn file and its files, or an .nwb file and its options
(e.g. nwb: s.nwb, window: [0.2, 0.7] for a response window after each onset),
antolik2016_mouse_v1.npz
(--region 1|2|3), allen_natural_scenes_v1.npz, or the word 'synthetic' (simulated V1
with known receptive fields; --synthetic KEY=VALUE sets n_neurons, image_shape,
n_train, repeats, seed ...; --synthetic preset=realistic simulates a cortex as hard to
predict as a real recording: calcium, shared gain noise, surround suppression, behaviour).

examples:
  neuroaikit twin fit synthetic --synthetic n_neurons=100 --out runs/twin-synthetic
  neuroaikit twin fit synthetic --synthetic preset=realistic --synthetic n_neurons=500 --out runs/twin-realistic
  neuroaikit twin fit ../shared/data/neural/allen_natural_scenes_v1.npz --out runs/twin-allen
  neuroaikit twin fit static20457-5-9-preproc0.zip --time-limit 2700 --out runs/twin-sensorium
  neuroaikit twin fit static20457-5-9-preproc0.zip --members 3 --out runs/twin-ensemble3
  neuroaikit twin fit mouse1.zip mouse2.zip mouse3.nwb --time-limit 2700 --out runs/twin-3mice
  neuroaikit twin fit mouse4.zip --core-from runs/twin-3mice --out runs/twin-transfer
  # fit data-parallel (twin evaluate and twin probe run in one process: start them without torchrun)
  torchrun --nproc_per_node 2 -m neuroaikit twin fit synthetic --out runs/twin-ddp
  neuroaikit twin evaluate runs/twin-sensorium --overwrite
  neuroaikit twin evaluate runs/twin-seed0 --ensemble-with runs/twin-seed1 runs/twin-seed2 --overwrite
  neuroaikit twin probe runs/twin-synthetic
"""

# option attribute -> (config section, field)
_MODEL_OPTIONS = {"core": "core", "readout": "readout", "channels": "hidden_channels", "layers": "layers",
                  "behavior": "use_behavior", "shifter": "shifter"}
#: config field -> the option that sets it, for one-line errors (see cli/option_names.py)
FLAGS = {"hidden_channels": "--channels", "use_behavior": "--behavior", "depth_separable": "--no-depth-separable",
         "cortex_grid": "--no-cortex-grid", "data": "DATA"}
_FIT_OPTIONS = {"batch_size": "batch_size", "lr": "lr", "max_epochs": "max_epochs", "patience": "patience",
                "seed": "seed", "starts": "starts", "loader_workers": "loader_workers"}
# option attribute -> TwinFitJob field
_JOB_OPTIONS = {"time_limit": "time_limit", "ln_time_limit": "ln_time_limit", "core_from": "core_from",
                "memory_map": "memory_map", "members": "members", "image_size": "image_size"}


def _image_size(text: str):
    """``auto``, ``native`` or ``HxW`` -> the value of ``TwinFitJob.image_size``."""
    import argparse

    if text in ("auto", "native"):
        return text
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected auto, native or HEIGHTxWIDTH (e.g. 36x64), got {text!r}")
    return [int(p) for p in parts]


def add_arguments(parser):
    import argparse

    from ..neural.fit import TwinFitConfig
    from ..neural.models import TwinModelConfig

    m, f = TwinModelConfig(), TwinFitConfig()
    sub = parser.add_subparsers(dest="twin_command", metavar="ACTION")
    fit = sub.add_parser(
        "fit", help="fit a twin to DATA and write a run folder",
        description="Fit a core + readout twin to DATA (train tier; validation tier for early stopping, "
        "10% of train images when absent), evaluate on the test tier and write a run folder "
        "(model.json, weights, metrics.json, results/twin_fit.json, results/twin_eval.json, report.html). "
        "A checkpoint is saved after every epoch: --resume continues an interrupted fit.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", nargs="+", help="FileTree folder/.zip, .nwb, .npz, suite2p folder, CaImAn .hdf5, "
                                             "recording .json/.yaml, "
                                             "or 'synthetic'; "
                                             "several: one shared core, one readout each")
    add_output_arguments(fit, resumable=True, resume_may_change="device, threads, precision and process count")
    fit.add_argument("--config", help="JSON (or YAML) file with TwinFitJob fields (data, fit: {model: ...}); "
                                      "command-line options override it")
    fit.add_argument("--region", type=int, help="Antolik region 1, 2 or 3")
    fit.add_argument("--core", choices=("cnn", "linear"), help=f"'linear' fits the LN model (default {m.core})")
    fit.add_argument("--readout", choices=("gaussian", "factorized"), help=f"default {m.readout}")
    fit.add_argument("--channels", type=int, help=f"core channels (default {m.hidden_channels})")
    fit.add_argument("--layers", type=int, help=f"core layers (default {m.layers})")
    fit.add_argument("--no-depth-separable", action="store_true", help="full convolutions in hidden layers")
    fit.add_argument("--no-cortex-grid", action="store_true", help="learn each RF position freely instead of from cortical coordinates")
    fit.add_argument("--behavior", action="store_true", default=None, help="behaviour modulator (and --shifter) inputs")
    fit.add_argument("--shifter", action="store_true", default=None, help="shift readout positions by pupil centre")
    fit.add_argument("--batch-size", type=int,
                     help=f"global batch, shared by all processes, at least their number (default {f.batch_size})")
    fit.add_argument("--lr", type=float, help=f"default {f.lr}")
    fit.add_argument("--max-epochs", type=int, help=f"default {f.max_epochs}")
    fit.add_argument("--patience", type=int, help=f"default {f.patience}")
    fit.add_argument("--time-limit", type=float, help="seconds for the whole command: loading, baselines, fit and "
                                                      "scoring (the fit ends early enough to leave time for the rest; "
                                                      "where that leaves no time to train, the receptive-field "
                                                      "recovery is skipped, and a limit too short even to score the "
                                                      "twin is overrun, by about what a note says first)")
    fit.add_argument("--core-from", metavar="RUN", help="transfer: copy RUN's core, freeze it, train only readouts")
    fit.add_argument("--seed", type=int, help=f"default {f.seed}")
    fit.add_argument("--starts", type=int, help=f"initialisations each twin's first epoch is trained from; it goes on "
                                                f"from the best on validation (default {f.starts})")
    fit.add_argument("--members", type=whole_number_or("auto"), metavar="N|auto",
                     help="twins to fit (seeds SEED, SEED+1, ...) and ensemble: the run predicts the mean of "
                          "those chosen best first, each only if it does not lower the validation correlation. "
                          "'auto' (default): one without --time-limit; with it, more while the time left is at least "
                          "half the longest twin's fit (at most 5); N: N members sharing the training time")
    fit.add_argument("--image-size", type=_image_size, metavar="auto|native|HxW",
                     help="resample the images first: 'auto' (default) shrinks a shorter side above "
                          "36 px to 36, aspect kept (Sensorium 2022's 144x256 -> 36x64); 'native' keeps "
                          "them; e.g. 72x128 sets the size. twin evaluate resamples new data the same way")
    fit.add_argument("--drop-nan-trials", action="store_true",
                     help="leave out trials whose responses hold NaN (withheld test responses, dropped "
                          "imaging frames), with a note, instead of stopping")
    fit.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    fit.add_argument("--ln-baseline", action="store_true", help="also fit the LN baseline (a second fit, off by default)")
    fit.add_argument("--ln-time-limit", type=float, help="the LN baseline's own budget in seconds (default: a quarter "
                                                         "of --time-limit)")
    fit.add_argument("--synthetic", action="append", metavar="KEY=VALUE", help="simulator options for DATA=synthetic")
    memory = fit.add_mutually_exclusive_group()
    memory.add_argument("--memory-map", dest="memory_map", action="store_const", const=True,
                        help="keep a FileTree recording on disk (a memory-mapped copy in $NEUROAIKIT_CACHE_DIR) "
                             "and read each batch from there (default: only when it would take more than a "
                             "quarter of the memory available)")
    memory.add_argument("--in-memory", dest="memory_map", action="store_const", const=False,
                        help="always read the recording into memory")
    fit.add_argument("--loader-workers", type=int, help="DataLoader processes gathering batches ahead of the model "
                                                        f"(default {f.loader_workers}: in the training process)")
    add_execution_arguments(fit, trains=True)
    fit.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(fit)

    ev = sub.add_parser("evaluate", help="Sensorium metrics of a fitted twin",
                        description="Score RUN_DIR's twin on DATA (default: the data it was fitted on) and save "
                                    "results/twin_eval.json (--overwrite replaces an existing one).")
    ev.add_argument("run_dir", help="a run folder written by `neuroaikit twin fit`")
    ev.add_argument("data", nargs="*", help="data set(s), one per mouse of the twin (default: the fit's)")
    ev.add_argument("--session", help="score one DATA with this mouse's readout (a twin of several mice)")
    ev.add_argument("--region", type=int, help="Antolik region 1, 2 or 3")
    ev.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    ev.add_argument("--ensemble-with", nargs="+", metavar="RUN", default=[],
                    help="other twin runs of the same mice and neurons: also score the mean of their and this "
                         "run's predictions (model 'ensemble'); give DATA before this option")
    ev.add_argument("--drop-nan-trials", action="store_true",
                    help="leave out trials whose responses hold NaN, with a note (default: as the fit did)")
    ev.add_argument("--overwrite", action="store_true", help="replace results/twin_eval.json")
    add_execution_arguments(ev)
    ev.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(ev)

    pr = sub.add_parser("probe", help="in-silico experiments on a fitted twin",
                        description="Gratings tuning, RF maps and most exciting inputs of RUN_DIR's twin; "
                                    "results/twin_probe.json and report.html.")
    pr.add_argument("run_dir", help="a run folder written by `neuroaikit twin fit`")
    pr.add_argument("--neurons", type=int, default=8, help="how many (most predictable) neurons to map (default 8)")
    pr.add_argument("--mei-steps", type=int, default=100, help="default 100")
    pr.add_argument("--noise-images", type=int, default=2000, help="white-noise images for reverse correlation (default 2000)")
    pr.add_argument("--session", help="a twin of several mice: the mouse (session name, as fit named it) whose "
                                      "neurons are probed")
    pr.add_argument("--overwrite", action="store_true", help="replace results/twin_probe.json")
    add_execution_arguments(pr)
    pr.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(pr)


def job_from_args(args):
    """The :class:`TwinFitJob` the options describe (defaults from the dataclasses)."""
    from ..config import UnusedSettingError, load_config_file
    from ..errors import ConfigError
    from ..neural.simulate import SyntheticDataConfig
    from ..neural.twin import TwinFitJob
    from .options import execution_values, parse_assignments

    values = load_config_file(args.config) if args.config else {}
    fit = values.get("fit") or {}
    model = fit.get("model") or {} if isinstance(fit, dict) else None
    # checked before copying: dict() of a list is a crash (or, of pairs, a wrong mapping), not an error
    if not isinstance(fit, dict) or not isinstance(model, dict):
        raise ConfigError("fit and fit.model in the config file must be mappings")
    fit, model = dict(fit), dict(model)
    # the fields the file set at any level, for an error that says which setting came from it
    in_file = set(values) | set(fit) | set(model)
    for attr, name in _MODEL_OPTIONS.items():
        if getattr(args, attr) is not None:
            model[name] = getattr(args, attr)
    if args.no_depth_separable:
        model["depth_separable"] = False
    if args.no_cortex_grid:
        model["cortex_grid"] = False
    for attr, name in _FIT_OPTIONS.items():
        if getattr(args, attr) is not None:
            fit[name] = getattr(args, attr)
    execution = execution_values(args)
    if execution:
        given = fit.get("execution") or {}
        if not isinstance(given, dict):
            raise ConfigError("fit.execution in the config file must be a mapping (device, precision, threads)")
        fit["execution"] = {**given, **execution}
    fit["model"] = model
    values["fit"] = fit
    values["data"] = args.data[0] if len(args.data) == 1 else list(args.data)
    for attr, name in _JOB_OPTIONS.items():
        if getattr(args, attr) is not None:
            values[name] = getattr(args, attr)
    if args.ln_baseline:
        values["ln_baseline"] = True
    if args.region is not None:
        values["region"] = args.region
    if args.no_baselines:
        values["baselines"] = False
    if args.drop_nan_trials:
        values["nan_policy"] = "drop"
    synthetic = parse_assignments(args.synthetic, "--synthetic")
    if synthetic:
        if args.data != ["synthetic"]:
            raise ConfigError("--synthetic applies only when DATA is 'synthetic'")
        if values.get("synthetic"):  # it would replace the file's simulator, not add to it
            raise ConfigError(f"--synthetic and the synthetic block of --config {args.config} both set the simulator; "
                              f"set it in one place")
        try:
            values["synthetic"] = SyntheticDataConfig.from_flat(synthetic).to_dict()
        except UnusedSettingError as exc:  # "--synthetic tau applies only with --synthetic calcium=true"
            raise ConfigError(exc.describe(lambda name: f"--synthetic {name}")) from None
        except ConfigError as exc:
            text = str(exc)
            # a simulator setting's own name (seed, n_neurons) would be read as the option of that name
            raise ConfigError(text if text.startswith(("synthetic ", "unknown synthetic")) else f"--synthetic {text}"
                              ) from None
    typed = {name for options in (_MODEL_OPTIONS, _FIT_OPTIONS, _JOB_OPTIONS) for attr, name in options.items()
             if getattr(args, attr) is not None}
    typed |= {name for name, flag in (("data", True), ("depth_separable", args.no_depth_separable),
                                      ("cortex_grid", args.no_cortex_grid), ("region", args.region is not None)) if flag}
    try:
        return TwinFitJob.from_dict(values, where="twin fit")
    except UnusedSettingError as error:  # "--shifter ... (set in --config f.yaml)"
        path = error.path
        if path[:1] == ("synthetic",):  # typed ones were refused above: from the file
            raise ConfigError(f"{error.describe(lambda name: '.'.join((*path, name)))} "
                              f"(set in --config {args.config})") from None
        raise error.located(args.config, in_file - typed) from None


def run(args) -> int:
    import time

    from ..errors import ConfigError
    from ..execution import is_main_process
    from ..neural.twin import evaluate_run, fit_run, probe_run
    from ..progress import default_progress
    from ..report import build_report
    from .options import execution_from_args

    if args.twin_command is None:
        raise ConfigError("choose an action: neuroaikit twin fit|evaluate|probe (see --help)")
    progress = default_progress(quiet=args.quiet)
    if args.twin_command == "fit":
        started = time.monotonic()
        job = job_from_args(args)
        path = fit_run(job, args.out, overwrite=args.overwrite, resume=args.resume, progress=progress,
                       started=started).path
    elif args.twin_command == "evaluate":
        data = (args.data[0] if len(args.data) == 1 else args.data) if args.data else None
        evaluate_run(args.run_dir, data, args.region, baselines=not args.no_baselines, overwrite=args.overwrite,
                     execution=execution_from_args(args), progress=progress, session=args.session,
                     ensemble_with=args.ensemble_with, nan_policy="drop" if args.drop_nan_trials else None)
        path = args.run_dir
    else:
        probe_run(args.run_dir, args.neurons, args.mei_steps, args.noise_images, overwrite=args.overwrite,
                  execution=execution_from_args(args), progress=progress, session=args.session)
        path = args.run_dir
    if not is_main_process():
        return 0
    if not args.no_report:
        print(f"report: {build_report(path)}")
    print(f"run: {path}")
    return 0
