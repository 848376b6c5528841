"""The greedy all-pairs generator used by the combination test."""

import itertools

from .allpairs import all_pairs, pairs_of, pairwise

FACTORS = {
    "model": ["mlp", "cnn", "rnn"],
    "source": ["synthetic", "csv", "text"],
    "optimizer": ["sgd", "adam"],
    "precision": ["32", "bf16"],
    "clip": ["off", "norm", "value"],
}


def allowed(case: dict) -> bool:
    """Toy rules: text needs rnn, rnn needs text, csv is no place for a cnn."""
    model, source = case.get("model", "mlp"), case.get("source", "synthetic")
    if (source == "text") != (model == "rnn"):
        return False
    return not (model == "cnn" and source == "csv")


def test_covers_every_allowed_pair_with_fewer_cases_than_the_product():
    cases, infeasible = pairwise(FACTORS, allowed)
    names = list(FACTORS)
    covered = set().union(*(pairs_of(case, names) for case in cases))
    assert covered | set(infeasible) == set(all_pairs(FACTORS))
    assert not covered & set(infeasible)
    assert all(allowed(case) and set(case) == set(FACTORS) for case in cases)
    product = [dict(zip(names, values)) for values in itertools.product(*FACTORS.values())]
    # a pair is infeasible exactly when no allowed case of the full product holds it
    possible = set().union(*(pairs_of(case, names) for case in product if allowed(case)))
    assert covered == possible
    assert len(cases) < len([case for case in product if allowed(case)]) / 4


def test_is_deterministic_and_needs_no_rules():
    first, _ = pairwise(FACTORS, allowed)
    assert pairwise(FACTORS, allowed)[0] == first
    cases, infeasible = pairwise(FACTORS, lambda case: True)
    assert not infeasible
    assert 9 <= len(cases) <= 12  # at least 3 x 3 for the two three-valued factor pairs
