"""``neuroaikit bmi --dataset ... --out RUN``: decode intent from EEG."""

from __future__ import annotations

from .options import add_execution_arguments, add_output_arguments, add_quiet_argument

NAME = "bmi"
HELP = "decode intent from EEG (CSP, Riemann, CCA/TRCA, EEGNet), MOABB-style evaluation, robustness"
DESCRIPTION = """\
Brain-machine interface decoding on real EEG, read and epoched with MNE: cross-validated
accuracy per decoder and subject (MOABB's within-session 5-fold by default), exact binomial
intervals, the label-permutation p-value (--permutations N), ITR, pseudo-online accuracy
against window length (--windows), and a robustness table (--robustness): additive noise at
stated SNRs, 1-4 channels lost, electrode shift among neighbours, and white-box APGD with an
L-inf budget in microvolts (with EOT over noise draws for a deep decoder trained with
--deep-noise). Prints each decoder's accuracy (per subject and the mean, with several
subjects) and the robustness and window tables when asked for; writes OUT/results/bmi.json and
OUT/report.html (confusion matrices, accuracy by subject, CSP patterns on the scalp, SSVEP
spectra, robustness curves).

Data sets (--data-dir holds their folders): ssvep-exo (SSVEP exoskeleton, Kalunga et al. 2016,
subjects 1-6 here) and physionet-mi (PhysioNet motor imagery, imagined left vs right fist,
runs 4/8/12). Decoders: csp_lda, fbcsp_lda, ts_lr, mdm, xdawn_ts_lr (for P300, which no data set
here has; no attack twin), cca, fbcca, trca, eegnet, shallow.
Needs the bmi extra: pip install neuroaikit[bmi].

examples:
  neuroaikit bmi --dataset ssvep-exo --subjects 1 2 3 4 5 6 --decoders cca trca ts_lr --out runs/ssvep
  neuroaikit bmi --dataset physionet-mi --subjects 1 --decoders csp_lda ts_lr --permutations 100 --out runs/mi
  neuroaikit bmi --dataset physionet-mi --channels FC3 FCz FC4 C5 C3 C1 Cz C2 C4 C6 CP3 CP4 --out runs/mi-sm
  neuroaikit bmi --dataset ssvep-exo --decoders ts_lr eegnet --robustness --eps-uv 0.5 1 2 --out runs/ssvep-robust
  neuroaikit bmi --dataset ssvep-exo --decoders eegnet --deep-noise 0.5 --robustness --eot 20 --out runs/noisy
  neuroaikit bmi --dataset ssvep-exo --decoders cca --windows 0.5 1 1.5 2 --out runs/online
"""

_OPTIONS = {
    "dataset": "dataset", "data_dir": "data_dir", "subjects": "subjects", "channels": "channels", "decoders": "decoders",
    "scheme": "scheme", "folds": "folds", "permutations": "permutations", "robustness": "robustness",
    "snrs": "snrs_db", "channels_lost": "channels_lost", "eps_uv": "eps_uv", "attack_steps": "attack_steps",
    "eot": "eot", "windows": "windows_s", "deep_epochs": "deep_epochs", "deep_dropout": "deep_dropout",
    "deep_noise": "deep_noise",
    "noise_model": "noise_model", "selection_s": "selection_s", "seed": "seed",
}
FLAGS = {field: "--" + attr.replace("_", "-") for attr, field in _OPTIONS.items()}


def add_arguments(parser):
    from ..bmi.workflow import DATASETS, NOISE_MODELS, BMIConfig
    from ..bmi.evaluation import SCHEMES

    d = BMIConfig()
    parser.add_argument("--dataset", choices=DATASETS, help=f"which data set (default {d.dataset})")
    parser.add_argument("--data-dir", help="folder holding the data set folders (default $NEUROAIKIT_DATA/eeg, "
                                            "else ~/.neuroaikit/data/eeg)")
    parser.add_argument("--subjects", type=int, nargs="+", help=f"subject numbers (default {d.subjects})")
    parser.add_argument("--channels", nargs="+", metavar="NAME",
                        help="EEG channels to keep, e.g. C3 Cz C4 (default: all; picked after re-referencing)")
    parser.add_argument("--decoders", nargs="+", help=f"decoders to evaluate (default {' '.join(d.decoders)})")
    parser.add_argument("--scheme", choices=SCHEMES, help=f"cross-validation scheme (default {d.scheme})")
    parser.add_argument("--folds", type=int,
                        help=f"folds of within-session k-fold and of --windows (default {d.folds})")
    parser.add_argument("--permutations", type=int, help="label permutations for the chance p-value (default 0: none)")
    parser.add_argument("--robustness", action="store_const", const=True, default=None,
                        help="measure noise, channel-loss, electrode-shift and APGD accuracy")
    parser.add_argument("--snrs", type=float, nargs="+", help=f"noise SNRs in dB (default {d.snrs_db})")
    parser.add_argument("--channels-lost", type=int, nargs="+", help=f"electrodes lost (default {d.channels_lost})")
    parser.add_argument("--eps-uv", type=float, nargs="+", help=f"APGD L-inf budgets in uV (default {d.eps_uv})")
    parser.add_argument("--attack-steps", type=int, help=f"APGD iterations (default {d.attack_steps})")
    parser.add_argument("--eot", type=int, help=f"noise draws per gradient for stochastic decoders (default {d.eot})")
    parser.add_argument("--noise-model", choices=NOISE_MODELS,
                        help="noise at an SNR: 'sensor' (default), white on the electrodes before filtering, SNR in "
                             "the data set's band, the same for every decoder; 'input': white on each decoder's "
                             "own input, at the SNR of its power")
    parser.add_argument("--windows", type=float, nargs="+",
                        help="pseudo-online window lengths in s, cut from causally filtered epochs (default: none)")
    parser.add_argument("--selection-s", type=float,
                        help="time per selection for the ITR, s (default: from the cue to the epoch's end)")
    parser.add_argument("--deep-epochs", type=int, help=f"training epochs of eegnet/shallow (default {d.deep_epochs})")
    parser.add_argument("--deep-dropout", type=float,
                        help=f"dropout rate of eegnet/shallow, in [0, 1) (default {d.deep_dropout}; Lawhern et al. "
                             "2018 trained EEGNet with 0.5 within subjects and 0.25 across subjects)")
    parser.add_argument("--deep-noise", type=float,
                        help="Gaussian noise of this sigma (scaled input units) at the input of eegnet/shallow, on "
                             "in training and at test time: every accuracy is then one noise draw")
    parser.add_argument("--seed", type=int, help=f"seed of folds, permutations and attacks (default {d.seed})")
    parser.add_argument("--config", help="JSON/YAML file of BMIConfig fields (options override it)")
    parser.add_argument("--no-report", action="store_true", help="do not build report.html")
    add_output_arguments(parser)
    add_execution_arguments(parser, trains=True)
    add_quiet_argument(parser)


def print_result(result) -> None:
    ds = result.dataset
    sd = ds.get("channel_sd_uv") or []
    print(f"{ds['name']}: {ds['n_trials']} trials, {ds['n_channels']} channels, {len(ds['classes'])} classes "
          f"(chance {result.chance:.2f}), subjects {', '.join(ds['subjects'])}"
          + (f"; channel sd {sd[0]:.1f}-{sd[1]:.1f} uV" if sd else ""))
    published = result.published or {}
    metric = "AUC" if published.get("metric") == "roc_auc" else "acc"
    auc = any(r.roc_auc is not None for r in result.decoders)
    print(f"{'decoder':<10} {'accuracy':>8} {'95% CI':>15} {'p (perm)':>9} {'ITR b/min':>10}"
          + (f" {'AUC':>6}" if auc else "") + f" {'MOABB ' + metric:>10}")
    for r in result.decoders:
        p = "-" if r.permutation_p is None else f"{r.permutation_p:.3f}"
        ref = published.get(r.name)
        print(f"{r.name:<10} {r.accuracy:>8.3f} {f'[{r.interval[0]:.2f}, {r.interval[1]:.2f}]':>15} {p:>9} "
              f"{r.itr_bits_per_min or 0:>10.2f}" + (f" {'-' if r.roc_auc is None else f'{r.roc_auc:.3f}':>6}" if auc
                                                     else "") + f" {'-' if ref is None else f'{ref / 100:.3f}':>10}")
    selection = next((r.itr_selection_s for r in result.decoders if r.itr_selection_s), None)
    if selection:
        print(f"ITR: {selection:g} s per selection (cue to decision)")
    if published:
        print(f"MOABB: {published.get('source')}")
    if len(ds["subjects"]) > 1:
        _print_per_subject(result)
    if any(r.robustness for r in result.decoders):
        _print_robustness(result)
    if any(r.pseudo_online for r in result.decoders):
        _print_windows(result)


def _columns(tables: list[dict]) -> list[str]:
    """The keys of ``tables`` in the order they first appear."""
    return list(dict.fromkeys(k for t in tables for k in t))


def _print_per_subject(result) -> None:
    from ..results import format_figure
    from .cmd_data import _print_table

    subjects = result.dataset["subjects"]
    rows = []
    for r in result.decoders:
        values = [r.per_subject.get(s) for s in subjects]
        known = [v for v in values if v is not None]
        rows.append([r.name, *(format_figure(v, ".3f") for v in values),
                     format_figure(sum(known) / len(known) if known else None, ".3f")])
    print("accuracy by subject:")
    _print_table(["decoder", *subjects, "mean"], rows)


def _print_robustness(result) -> None:
    from ..results import format_figure
    from .cmd_data import _print_table

    decoders = [r for r in result.decoders if r.robustness]
    snrs = _columns([r.robustness["noise"] for r in decoders])
    lost = _columns([r.robustness["channels_lost"] for r in decoders])
    eps = _columns([r.robustness["apgd"] for r in decoders])
    rows = [[r.name, format_figure(r.robustness.get("clean"), ".3f"),
             *(format_figure(r.robustness["noise"].get(k), ".3f") for k in snrs),
             *(format_figure(r.robustness["channels_lost"].get(k), ".3f") for k in lost),
             format_figure(r.robustness.get("electrode_shift"), ".3f"),
             *(format_figure(r.robustness["apgd"].get(k), ".3f") for k in eps)] for r in decoders]
    noise = decoders[0].robustness.get("noise_model")
    print(f"robustness (accuracy on held-out trials, mean over subjects; {noise} noise):")
    _print_table(["decoder", "clean", *(f"SNR {k} dB" for k in snrs), *(f"{k} ch lost" for k in lost), "shift",
                  *(f"APGD {k} uV" for k in eps)], rows)


def _print_windows(result) -> None:
    from ..results import format_figure
    from .cmd_data import _print_table

    rows = [[r.name, format_figure(w.get("window_s"), "g"), format_figure(w.get("accuracy"), ".3f"),
             format_figure(w.get("latency_s"), ".3f")] for r in result.decoders for w in r.pseudo_online or []]
    print("pseudo-online (first L s of each epoch, causal filters):")
    _print_table(["decoder", "window s", "accuracy", "latency after cue s"], rows)


def run(args) -> int:
    from ..bmi.workflow import BMIConfig, bmi_run
    from ..progress import default_progress
    from .options import config_from_args

    # a setting this run would not use is refused there, spelled as options ("--eot applies only with --robustness")
    config = config_from_args(BMIConfig, args, _OPTIONS, config_file=args.config)
    assert isinstance(config, BMIConfig)
    run_, result = bmi_run(config, args.out, overwrite=args.overwrite, progress=default_progress(quiet=args.quiet),
                           report=not args.no_report)
    print_result(result)
    print(f"results: {run_.path}/results/bmi.json ({result.time_s:.1f} s)")
    return 0
