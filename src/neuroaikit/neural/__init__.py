"""Digital twin of mouse visual cortex: neural data, core + readout models, Sensorium
metrics and in-silico experiments.

- :class:`NeuralDataset`: stimuli, responses per trial, image ids, tiers, behaviour, neurons;
  ``repeats(tier)``, ``trial_average(tier)``;
- loaders: :func:`load_neural` (any format), :func:`load_filetree` (Sensorium folder or zip),
  :func:`load_nwb` / :func:`write_nwb`, :func:`load_antolik`, :func:`load_allen`;
  :func:`write_filetree`;
- :class:`SyntheticCortex`: ground-truth V1 simulator writing FileTree data sets;
- models (registered as ``"twin"`` and ``"twin-ln"``): :class:`CortexTwin`, :class:`TwinEnsemble`,
  :class:`Stacked2dCore`, :class:`GaussianReadout`, :class:`FactorizedReadout`;
  :func:`~neuroaikit.neural.fit.fit_twin` with :class:`~neuroaikit.neural.fit.TwinFitConfig`,
  :func:`~neuroaikit.neural.fit.predict`; baseline :class:`PixelRidge`;
- metrics (:mod:`neuroaikit.neural.metrics`): single-trial correlation, correlation to
  average, FEV, FEVE, jackknife oracle, fraction of oracle;
- in-silico experiments (:mod:`neuroaikit.neural.insilico`);
- run folders (``neuroaikit.neural.twin``): ``fit_run``, ``evaluate_run``, ``probe_run``.
"""

from .dataset import TIERS, NeuralDataset, group_repeats
from .npz import load_allen, load_antolik
from .filetree import load_filetree, write_filetree
from .nwb import load_nwb, write_nwb
from .load import load_neural
from .simulate import SyntheticCortex
from .models import CortexTwin, FactorizedReadout, GaussianReadout, Modulator, Shifter, Stacked2dCore, TwinEnsemble
from .fit import TwinFitConfig, fit_twin, predict
from .models import TwinModelConfig
from .simulate import SyntheticDataConfig
from .baselines import PixelRidge
from . import metrics, insilico

__all__ = [
    "TIERS", "NeuralDataset", "group_repeats", "load_allen", "load_antolik", "load_filetree", "write_filetree",
    "load_nwb", "write_nwb", "load_neural", "SyntheticCortex", "CortexTwin", "FactorizedReadout", "GaussianReadout",
    "Modulator", "Shifter", "Stacked2dCore", "TwinEnsemble", "TwinFitConfig", "TwinModelConfig", "SyntheticDataConfig", "fit_twin", "predict", "PixelRidge", "metrics", "insilico",
]
