"""Parameter inference from a field: VLB terms, grid posterior, P(k) baseline, calibration.

    from explorer.model import load_model
    from explorer.inference import infer
    post = infer(load_model("weights"), field, truth=(0.3, 0.8))    # a Posterior
    post.delta_chi2, post.levels, post.marginal_omega_m, post.estimates["omega_m"]

Modules: ``likelihood`` (``normal_kl``, ``gaussian_log_likelihood``), ``vlb`` (``vlb_terms``:
the terms L_0, L_k, L_T with common random numbers), ``grid`` (``Posterior``, ``infer``, coarse
to fine scan, marginals and intervals), ``pk_baseline`` (``PkBaseline``), ``calibrate``
(`explorer calibrate`), ``command`` (`explorer infer`), ``plot`` (matplotlib figure).
"""

from .grid import LEVELS, Posterior, infer, interval, interval_68, marginals
from .pk_baseline import PkBaseline
from .vlb import InferenceCancelled, prior_kl, term_timesteps, term_weights, vlb_terms

__all__ = ["LEVELS", "InferenceCancelled", "PkBaseline", "Posterior", "infer", "interval", "interval_68",
           "marginals", "prior_kl", "term_timesteps", "term_weights", "vlb_terms"]
