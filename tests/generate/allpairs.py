"""A small greedy all-pairs (pairwise) test-set generator with constraints.

    cases, infeasible = pairwise(factors, is_valid)

`factors` maps a factor name to its values (in order of preference); `is_valid` says whether
an assignment (a dict holding some or all factors; the missing ones keep their defaults) is
allowed. Every pair of values of two different factors either appears in at least one
returned case, or is in `infeasible`: no valid case holding it was found. Every returned case
assigns every factor and is valid. Deterministic: the same input gives the same cases.

Greedy in the style of AETG: each new case starts from the first uncovered pair and gives
each other factor the value that covers the most still-uncovered pairs while keeping the
case valid; when that dead-ends, seeded random completions of the pair are tried.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Hashable, Mapping, Sequence

Pair = tuple[tuple[str, Hashable], tuple[str, Hashable]]


def all_pairs(factors: Mapping[str, Sequence[Hashable]]) -> list[Pair]:
    names = list(factors)
    return [
        ((a, x), (b, y))
        for a, b in itertools.combinations(names, 2)
        for x in factors[a]
        for y in factors[b]
    ]


def pairs_of(case: Mapping[str, Hashable], names: Sequence[str]) -> set[Pair]:
    present = [name for name in names if name in case]
    return {((a, case[a]), (b, case[b])) for a, b in itertools.combinations(present, 2)}


def pairwise(
    factors: Mapping[str, Sequence[Hashable]],
    is_valid: Callable[[dict], bool],
    *,
    random_tries: int = 60,
    seed: int = 0,
) -> tuple[list[dict], list[Pair]]:
    names = list(factors)
    uncovered = all_pairs(factors)  # a list keeps the order deterministic
    remaining = set(uncovered)
    rng = random.Random(seed)
    cases: list[dict] = []
    infeasible: list[Pair] = []
    known: dict[tuple, bool] = {}

    def valid(case: dict) -> bool:
        key = tuple(sorted(case.items(), key=lambda item: names.index(item[0])))
        if key not in known:
            known[key] = is_valid(case)
        return known[key]

    def gain(case: dict) -> int:
        return len(pairs_of(case, names) & remaining)

    def complete(start: dict) -> dict | None:
        case = dict(start)
        for name in names:
            if name in case:
                continue
            # most new pairs first; ties keep the order the values were given in
            ranked = sorted(factors[name], key=lambda value: -gain({**case, name: value}))
            case[name] = next((v for v in ranked if valid({**case, name: v})), ranked[0])
        if valid(case):
            return case
        free = [name for name in names if name not in start]
        for _ in range(random_tries):
            case = {**start, **{name: rng.choice(list(factors[name])) for name in free}}
            if valid(case):
                return case
        return None

    # A value no valid case can hold rules out all its pairs at once (one search, not many).
    for name in names:
        for value in factors[name]:
            if complete({name: value}) is None:
                dead = [pair for pair in uncovered if (name, value) in pair and pair in remaining]
                infeasible.extend(dead)
                remaining.difference_update(dead)

    for pair in uncovered:
        if pair not in remaining:
            continue
        (a, x), (b, y) = pair
        case = complete({a: x, b: y})
        if case is None:
            infeasible.append(pair)
            remaining.discard(pair)
            continue
        cases.append(case)
        remaining -= pairs_of(case, names)
    return cases, infeasible
