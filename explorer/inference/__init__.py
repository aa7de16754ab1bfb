"""Parameter inference from a field: VLB terms, grid posterior, P(k) baseline, calibration.

    from explorer.model import load_model
    from explorer.inference import infer
    post = infer(load_model(), field, truth=(0.3, 0.8))    # a Posterior (the shipped weights)
    post.delta_chi2, post.levels, post.marginal_omega_m, post.estimates["omega_m"]

Modules: ``likelihood`` (``normal_kl``, ``gaussian_log_likelihood``), ``vlb`` (``vlb_terms``:
the terms L_0, L_k, L_T with common random numbers), ``grid`` (``infer``, the coarse to fine
scan), ``posterior`` (``Posterior``: the grid surface, marginals and intervals), ``defaults`` (the
shared defaults, no torch),
``pk_baseline`` (``PkBaseline``), ``calibrate`` (temperatures and coverage) with
``calibrate_command`` (`explorer calibrate`) and ``grids_file`` (its saved surfaces), ``command`` (`explorer infer`), ``plot`` (matplotlib figure).
Names are imported lazily so that the commands' ``--help`` does not load torch.
"""

from __future__ import annotations

from explorer._lazy import lazy_exports

_EXPORTS = {
    "LEVELS": "defaults", "Posterior": "posterior", "infer": "grid", "interval": "posterior",
    "interval_68": "posterior", "marginals": "posterior", "PkBaseline": "pk_baseline", "InferenceCancelled": "vlb", "prior_kl": "vlb",
    "term_timesteps": "vlb", "term_weights": "vlb", "vlb_terms": "vlb",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
