"""Brain-machine interfaces: decode intent from EEG, evaluate it honestly, test its robustness.

Reading and epoching go through MNE (EDF/BDF/GDF, FIF, BrainVision, EEGLAB); decoders are
scikit-learn pipelines (MNE's CSP, pyriemann, our CCA/FBCCA/TRCA, EEGNet and ShallowConvNet
trained through the execution layer); evaluation follows MOABB; robustness uses the toolkit's
attacks (APGD with a budget in microvolts) and noise layers. MNE and pyriemann come with the
``bmi`` extra (``pip install neuroaikit[bmi]``); importing this package does not need them,
using it does.
"""

from .epochs import EpochsDataset, PreprocessConfig, concatenate, epoch, epoch_array, find_events, load_epochs, \
    preprocess, read_raw
from .results import BMIResult, DecoderResult

__all__ = [
    "EpochsDataset", "PreprocessConfig", "concatenate", "epoch", "epoch_array", "find_events", "load_epochs",
    "preprocess", "read_raw", "BMIResult", "DecoderResult", "BMIConfig", "bmi_run", "decode",
    "UnusedSettingError", "find_unused_setting",
    "load_physionet_mi", "load_ssvep_exo", "cross_validate", "permutation_test", "binomial_interval",
    "itr_bits_per_min", "pseudo_online", "robustness_table", "SensorNoise", "make_decoder", "as_torch",
]


def __getattr__(name):
    if name in ("BMIConfig", "bmi_run", "decode", "UnusedSettingError", "find_unused_setting"):
        from . import workflow

        return getattr(workflow, name)
    if name in ("load_physionet_mi", "load_ssvep_exo"):
        from . import datasets

        return getattr(datasets, name)
    if name in ("cross_validate", "permutation_test", "binomial_interval", "itr_bits_per_min", "pseudo_online"):
        from . import evaluation

        return getattr(evaluation, name)
    if name in ("robustness_table", "SensorNoise"):
        from . import robustness

        return getattr(robustness, name)
    if name in ("make_decoder", "as_torch"):
        from . import decoders

        return getattr(decoders, name)
    raise AttributeError(name)
