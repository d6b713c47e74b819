"""The statistics of pairwise votes, checked against known truths and a separate computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuneback.services import pairwise as pw

TRUE = {"m0": -1.2, "m1": -0.8, "m2": -0.4, "m3": 0.0, "m4": 0.4, "m5": 0.8, "m6": 1.2}


def simulate(n: int, seed: int, strengths: dict[str, float]) -> pw.Battles:
    """n votes between random pairs, the winner drawn from the Bradley–Terry probability."""
    rng = np.random.default_rng(seed)
    names = list(strengths)
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    theta = np.array([strengths[m] for m in names])
    p_a = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    outcome = np.where(rng.random(n) < p_a, "a", "b")
    return pw.battles_from([names[i] for i in a], [names[i] for i in b], outcome.tolist())


def mm_reference(model_a: list[str], model_b: list[str], outcome: list[str]) -> dict[str, float]:
    """Bradley–Terry by Zermelo's / Hunter's MM iteration, straight from the battles.

    Written apart from the Newton fit: strength_i ← wins_i / Σ_j n_ij / (s_i + s_j),
    a tie or both-bad being half a win to each side; centred log-strengths out.
    """
    names = sorted(set(model_a) | set(model_b))
    wins = dict.fromkeys(names, 0.0)
    games: dict[tuple[str, str], float] = {}
    for a, b, o in zip(model_a, model_b, outcome, strict=True):
        share = {"a": 1.0, "b": 0.0}.get(o, 0.5)
        wins[a] += share
        wins[b] += 1 - share
        games[(a, b)] = games.get((a, b), 0) + 1
        games[(b, a)] = games.get((b, a), 0) + 1
    s = dict.fromkeys(names, 1.0)
    for _ in range(5000):
        new = {}
        for i in names:
            denom = sum(n / (s[i] + s[j]) for (x, j), n in games.items() if x == i)
            new[i] = wins[i] / denom
        geo = math.exp(sum(math.log(v) for v in new.values()) / len(new))
        new = {k: v / geo for k, v in new.items()}
        done = max(abs(new[k] - s[k]) for k in names) < 1e-12
        s = new
        if done:
            break
    logs = {k: math.log(v) for k, v in s.items()}
    mean = sum(logs.values()) / len(logs)
    return {k: v - mean for k, v in logs.items()}


def test_the_fit_recovers_known_strengths_from_20k_votes() -> None:
    battles = simulate(20_000, seed=13, strengths=TRUE)
    tally = pw.tally(battles)
    fitted, _ = pw.fit(tally)
    got = dict(zip(battles.models, fitted.tolist(), strict=True))
    assert sorted(got, key=got.__getitem__) == sorted(TRUE, key=TRUE.__getitem__)
    for a in TRUE:
        for b in TRUE:
            assert abs((got[a] - got[b]) - (TRUE[a] - TRUE[b])) < 0.1, (a, b)
    sampled, _ = pw.bootstrap(tally, rounds=300, seed=1)
    low, high = np.percentile(pw.to_score(sampled), [2.5, 97.5], axis=0)
    ranks = dict(zip(battles.models, pw.ranks(low.tolist(), high.tolist()), strict=True))
    by_truth = sorted(TRUE, key=lambda m: -TRUE[m])
    assert [ranks[m] for m in by_truth] == list(range(1, len(TRUE) + 1))


def test_the_fit_agrees_with_an_independent_computation_with_ties_and_both_bad() -> None:
    rng = np.random.default_rng(5)
    names = ["ant", "bee", "cat", "dog", "eel"]
    a = [names[i] for i in rng.integers(0, 5, 3000)]
    b = [names[(names.index(x) + int(rng.integers(1, 5))) % 5] for x in a]
    outcome = rng.choice(["a", "b", "tie", "both_bad"], 3000, p=[0.4, 0.35, 0.15, 0.1]).tolist()
    battles = pw.battles_from(a, b, outcome)
    fitted, _ = pw.fit(pw.tally(battles))
    reference = mm_reference(a, b, outcome)
    assert fitted.tolist() == pytest.approx([reference[m] for m in battles.models], abs=1e-3)


def test_a_tie_is_half_a_win_each_way_and_both_bad_weighs_the_same() -> None:
    # One win and two ties: two wins of three, so the odds are 2:1 and the gap ln 2.
    with_ties = pw.tally(pw.battles_from(["x", "x", "y"], ["y", "y", "x"], ["a", "tie", "tie"]))
    fitted, _ = pw.fit(with_ties)
    assert fitted.tolist() == pytest.approx([math.log(2) / 2, -math.log(2) / 2], abs=1e-3)
    both_bad = pw.tally(pw.battles_from(["x", "x", "y"], ["y", "y", "x"], ["a", "both_bad", "tie"]))
    assert pw.fit(both_bad)[0].tolist() == pytest.approx(fitted.tolist(), abs=1e-12)
    # ...but both-bad stays its own count.
    assert pw.pair_counts(both_bad)[0, 1].tolist() == [1, 0, 1, 1]
    assert pw.pair_counts(both_bad)[1, 0].tolist() == [0, 1, 1, 1]
    assert pw.pair_counts(with_ties)[0, 1].tolist() == [1, 0, 2, 0]
    only_ties = pw.tally(pw.battles_from(["x", "y"], ["y", "x"], ["tie", "both_bad"]))
    assert pw.fit(only_ties)[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_sides_do_not_matter_swapping_a_and_b_gives_the_same_fit() -> None:
    battles = simulate(2_000, seed=3, strengths={"p": 0.5, "q": 0.0, "r": -0.5})
    flip = {0: 1, 1: 0, 2: 2, 3: 3}
    swapped = pw.Battles(
        battles.models,
        battles.model_b,
        battles.model_a,
        np.array([flip[o] for o in battles.outcome.tolist()]),
        battles.len_b,
        battles.len_a,
    )
    assert pw.fit(pw.tally(swapped))[0].tolist() == pytest.approx(
        pw.fit(pw.tally(battles))[0].tolist(), abs=1e-9
    )


def test_style_control_takes_the_length_effect_out_of_the_scores() -> None:
    # Two equally good models; "long" mostly writes 600 characters, "short" mostly
    # 300, and people prefer the longer answer: logit = 2 · (len_a − len_b)/(len_a + len_b).
    rng = np.random.default_rng(8)
    n = 20_000
    long_first = rng.random(n) < 0.5
    long_len = np.where(rng.random(n) < 0.8, 600.0, 300.0)
    short_len = np.where(rng.random(n) < 0.8, 300.0, 600.0)
    len_a = np.where(long_first, long_len, short_len)
    len_b = np.where(long_first, short_len, long_len)
    p_a = 1 / (1 + np.exp(-2.0 * (len_a - len_b) / (len_a + len_b)))
    outcome = np.where(rng.random(n) < p_a, "a", "b").tolist()
    model_a = np.where(long_first, "long", "short").tolist()
    model_b = np.where(long_first, "short", "long").tolist()
    battles = pw.battles_from(model_a, model_b, outcome, len_a.tolist(), len_b.tolist())
    plain, _ = pw.fit(pw.tally(battles))
    assert plain[0] - plain[1] > 0.3  # without style control "long" looks better
    tally = pw.tally(battles, style=True)
    styled, gamma = pw.fit(tally)
    assert abs(styled[0] - styled[1]) < 0.1
    # A difference of 1/3 falls in the bucket centred on 0.4 (index 7 of 11); the
    # fitted effect there is the true one, 2/3 in log-odds, up to the bucketing.
    assert gamma * tally.feature[7] == pytest.approx(2 / 3, abs=0.1)


def test_elo_on_a_sequence_worked_by_hand() -> None:
    battles = pw.battles_from(["x", "x", "y"], ["y", "y", "x"], ["a", "tie", "a"])
    # 1: x beats y, both at 1000, expected 0.5: x 1002, y 998.
    # 2: tie; x expected 1 / (1 + 10^(-4/400)) = 0.505756; x moves 4·(0.5 − 0.505756) = −0.023.
    e2 = 1 / (1 + 10 ** (-4 / 400))
    x, y = 1002 + 4 * (0.5 - e2), 998 - 4 * (0.5 - e2)
    # 3: y beats x: y expected 1 / (1 + 10^((x − y)/400)).
    e3 = 1 / (1 + 10 ** ((x - y) / 400))
    x, y = x - 4 * (1 - e3), y + 4 * (1 - e3)
    assert pw.elo(battles).tolist() == pytest.approx([x, y], abs=1e-9)
    assert round(x, 3) == 999.954  # the numbers a person gets on paper
    assert round(y, 3) == 1000.046


def test_rank_is_one_plus_the_models_surely_better() -> None:
    lower = [1100.0, 1050.0, 990.0, 900.0]
    upper = [1200.0, 1120.0, 1060.0, 980.0]
    # Model 3's upper bound 980 is below the lower bounds of 0, 1 and 2.
    assert pw.ranks(lower, upper) == [1, 1, 2, 4]


def test_win_rates_and_counts_per_pair() -> None:
    battles = pw.battles_from(
        ["x", "x", "y", "z", "x"], ["y", "y", "x", "x", "z"], ["a", "b", "tie", "both_bad", "a"]
    )
    counts = pw.pair_counts(pw.tally(battles))
    rates = pw.win_rates(counts)
    assert counts.sum(axis=2).tolist() == [[0, 3, 2], [3, 0, 0], [2, 0, 0]]
    assert rates[0, 1] == pytest.approx((1 + 0.5) / 3)
    assert rates[1, 0] == pytest.approx((1 + 0.5) / 3)
    assert rates[0, 2] == pytest.approx((1 + 0.5) / 2)
    assert math.isnan(rates[1, 2])


def test_the_bootstrap_is_seeded_and_resamples_as_many_battles() -> None:
    battles = simulate(1_000, seed=2, strengths={"p": 0.3, "q": 0.0, "r": -0.3})
    tally = pw.tally(battles)
    first, _ = pw.bootstrap(tally, rounds=50, seed=4)
    again, _ = pw.bootstrap(tally, rounds=50, seed=4)
    assert first.tolist() == again.tolist()
    assert first.shape == (50, 3)
    assert np.allclose(first.mean(axis=1), 0.0)
