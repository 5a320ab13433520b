"""Every preset is valid data and behaves as its lesson says."""

import numpy as np
import pytest

import kl_core as kc

REQUIRED = {
    "bimodal",
    "unequal",
    "three_modes",
    "close_modes",
    "far_modes",
    "five_modes",
    "ring",
    "correlated",
    "three_clusters",
    "city_tokens",
}


def test_required_presets_exist_with_lessons():
    assert REQUIRED <= set(kc.PRESETS)
    for p in kc.PRESETS.values():
        assert p.lesson and p.title and p.space in ("1d", "2d", "discrete")
    with pytest.raises(ValueError, match="valid presets"):
        kc.get_preset("nope")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_fits_for_both_directions(name):
    p = kc.get_preset(name)
    settings = dict(p.settings, steps=30)
    for objective in ("forward_kl", "reverse_kl"):
        traj = kc.fit(p.teacher, p.student, objective, seed=0, **settings)
        assert np.all(np.isfinite(traj.loss)) and traj.loss[-1].mean() < traj.loss[0].mean()


def test_bimodal_lesson_numbers():
    p = kc.get_preset("bimodal")
    fwd = kc.fit(p.teacher, p.student, "forward_kl", seed=0, **p.settings)
    rev = kc.fit(p.teacher, p.student, "reverse_kl", seed=0, **p.settings)
    assert all(kc.summarize(p.teacher, s).n_modes_covered == 2 for s in fwd.final)
    picked = [kc.summarize(p.teacher, s) for s in rev.final]
    assert sum(s.n_modes_covered == 1 for s in picked) >= 4  # most starts commit to one mode
    assert {s.dominant_mode for s in picked if s.n_modes_covered == 1} == {0, 1}


def test_close_modes_reverse_kl_stays_centred():
    p = kc.get_preset("close_modes")
    rev = kc.fit(p.teacher, p.student, "reverse_kl", seed=0, **p.settings)
    for s in rev.final:
        assert abs(s.mean) < 0.05
