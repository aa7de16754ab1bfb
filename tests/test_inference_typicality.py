"""The typicality check of `explorer infer`: the best fit's bound against a stored held-out line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from explorer.inference import infer
from explorer.inference.typicality import KEY, Z_WARN, note, p_value, reference, z_score
from explorer.model import load_model

TERMS = "vlb:4"


def test_z_score_is_the_distance_from_the_line_in_scatters():
    ref = {"terms": TERMS, "n_noise": 1, "coef": [100.0, 10.0, -20.0], "scatter": 5.0}
    assert z_score(100.0 + 10 * 0.3 - 20 * 0.8 + 15.0, (0.3, 0.8), ref) == pytest.approx(3.0)
    assert note(Z_WARN - 0.01) is None and note(-Z_WARN + 0.01) is None
    assert "atypical" in note(8.9) and "worse" in note(8.9) and "smooth" in note(-11.6)


def test_p_value_counts_held_out_maps_at_least_as_far_out():
    ref = {"z_heldout": [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0, -0.2]}  # 9 maps
    assert p_value(0.0, ref) == pytest.approx(1.0)
    assert p_value(1.2, ref) == pytest.approx((1 + 3) / 10)  # |z| >= 1.2: -2, 1.5, 3
    assert p_value(-1.2, ref) == p_value(1.2, ref)  # two-sided
    assert p_value(9.0, ref) == pytest.approx(1 / 10)  # beyond every held-out map: the smallest p
    assert p_value(1.959964, {}) == pytest.approx(0.05, rel=1e-4)  # no stored residuals: Gaussian


def test_reference_matches_terms_and_noise_and_refuses_a_broken_entry():
    meta = {KEY: {"terms": TERMS, "n_noise": 1, "coef": [1.0, 2.0, 3.0], "scatter": 4.0}}
    assert reference(meta, TERMS, 1) is meta[KEY]
    assert reference(meta, "vlb:8", 1) is None and reference(meta, TERMS, 2) is None and reference({}, TERMS, 1) is None
    with pytest.raises(ValueError, match="scatter"):
        reference({KEY: {"terms": TERMS, "coef": [1.0, 2.0, 3.0], "scatter": 0}}, TERMS, 1)


def small(**kw):
    return dict(terms=TERMS, coarse=(3, 3), fine=(3, 3), interpolate_to=None, calibrated=False, **kw)


def test_infer_scores_the_best_fit_and_warns_only_for_an_atypical_field(tiny_weights, tmp_path):
    rng = np.random.default_rng(0)
    field = 11.0 + 0.3 * rng.standard_normal((16, 16))
    loaded = load_model(tiny_weights)
    plain = infer(loaded, field, kind="log10", **small())
    assert "typicality_z" not in plain.settings  # no stored line: no check
    nll = plain.settings["chi2_min_raw"] / 2
    best = np.unravel_index(np.argmin(plain.delta_chi2), plain.delta_chi2.shape)
    theta = (plain.omega_m[best[0]], plain.sigma_8[best[1]])

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    meta = json.loads((folder / "explorer.json").read_text())
    for offset, warned in ((0.0, False), (-10.0, True)):  # the line through this field, then 10σ below it
        meta[KEY] = {"terms": TERMS, "n_noise": 1, "coef": [nll + offset * 2.0 - 0.5 * theta[0], 0.5, 0.0],
                     "scatter": 2.0}
        (folder / "explorer.json").write_text(json.dumps(meta))
        post = infer(load_model(folder), field, kind="log10", **small())
        assert post.settings["typicality_z"] == pytest.approx(-offset, abs=0.01)
        assert post.settings["typicality_p"] == pytest.approx(1.0 if not warned else 1.5e-23, rel=0.01, abs=1e-3)
        assert any("atypical" in n for n in post.notes) is warned
