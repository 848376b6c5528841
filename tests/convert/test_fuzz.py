"""Differential fuzzing of the converter (tests/convert/fuzz/): generated training scripts run
whole, original against converted, every back-propagated loss and the final weights compared.

A silent difference, a crash of the converted script or a converter error is a bug; `same`
and `refused` are the two acceptable verdicts. benchmarks/convert_fuzz.py runs more seeds.
"""

from __future__ import annotations

import pytest

from .fuzz.regressions import CONVERTED
from .fuzz.regressions import SEEDS as REGRESSIONS

SLICE = range(1000, 1050)  # a seeded slice, apart from the seeds the fixes were made on
OK = ("same", "refused")


def _verdicts(seeds):
    from .fuzz.run import check_seed

    return [check_seed(seed) for seed in seeds]


@pytest.mark.slow
def test_fuzz_slice_has_no_silent_difference_crash_or_converter_error():
    verdicts = _verdicts(SLICE)
    bad = [f"seed {v.seed}: {v.outcome}: {v.detail}" for v in verdicts if v.outcome not in OK]
    assert not bad, "\n".join(bad)
    assert any(v.outcome == "same" for v in verdicts), "the slice converted nothing"


@pytest.mark.slow
def test_fuzz_regression_seeds_convert_faithfully_or_are_refused():
    verdicts = _verdicts(sorted(REGRESSIONS))
    bad = [
        f"seed {v.seed} ({REGRESSIONS[v.seed]}): {v.outcome}: {v.detail}"
        for v in verdicts
        if v.outcome not in OK
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_fuzz_seeds_of_converted_mechanisms_stay_converted_and_the_same():
    verdicts = _verdicts(sorted(CONVERTED))
    bad = [
        f"seed {v.seed} ({CONVERTED[v.seed]}): {v.outcome}: {v.detail}"
        for v in verdicts
        if v.outcome != "same"
    ]
    assert not bad, "\n".join(bad)


def test_generator_is_a_pure_function_of_the_seed():
    from .fuzz.generate import script

    assert script(7) == script(7)
    assert script(7) != script(8)
    compile(script(7), "seed7.py", "exec")
