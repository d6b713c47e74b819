"""Statistics of pairwise votes: Bradley–Terry with bootstrap intervals, Elo, win rates.

Everything here is plain arithmetic on arrays, with no I/O, so a million battles
cost a fraction of a second:

- battles are first tallied into cells: one per pair of models (and, with style
  control, per bucket of answer-length difference) holding the wins of each
  side and the ties. Nothing downstream looks at single battles again, except
  Elo, which is defined by their order;
- the Bradley–Terry fit is a logistic regression on those cells, solved with
  Newton's method; a tie (and "both bad") counts as half a win each way, and a
  tiny L2 penalty makes the scores identifiable (they are centred on 0);
- the bootstrap resamples the cells' counts from a multinomial, which gives
  exactly the distribution of re-drawing the battles with replacement, and fits
  all rounds at once (one batched Newton solve).

Scores are reported on the Elo scale: ``1000 + 400 · log10(strength)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

OUTCOMES = ("a", "b", "tie", "both_bad")
"""Outcome codes, by position: a battle's outcome is stored as its index here."""
A_WINS, B_WINS, TIE, BOTH_BAD = range(4)

SCALE = 400.0
BASE = 10.0
START = 1000.0
ELO_K = 4.0
STYLE_BUCKETS = 11
"""Length-difference buckets for style control: steps of 0.2 from −1 to 1."""
L2 = 1e-4
"""Penalty on squared log-strengths: keeps scores finite when a model always wins."""
TOLERANCE = 1e-7
"""Newton stops when no log-strength moves more than this (2·10⁻⁵ Elo points)."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Battles:
    """Battles as parallel arrays, in time order; models are indices into ``models``."""

    models: list[str]
    model_a: IntArray
    model_b: IntArray
    outcome: IntArray
    len_a: FloatArray
    len_b: FloatArray

    def __len__(self) -> int:
        return int(self.model_a.shape[0])


def battles_from(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcome: Sequence[str],
    len_a: Sequence[float] | None = None,
    len_b: Sequence[float] | None = None,
) -> Battles:
    """Build :class:`Battles` from lists of names and outcome words."""
    models = sorted(set(model_a) | set(model_b))
    index = {name: i for i, name in enumerate(models)}
    code = {word: i for i, word in enumerate(OUTCOMES)}
    n = len(model_a)
    return Battles(
        models=models,
        model_a=np.fromiter((index[m] for m in model_a), np.int64, n),
        model_b=np.fromiter((index[m] for m in model_b), np.int64, n),
        outcome=np.fromiter((code[o] for o in outcome), np.int64, n),
        len_a=np.asarray(len_a if len_a is not None else [0.0] * n, np.float64),
        len_b=np.asarray(len_b if len_b is not None else [0.0] * n, np.float64),
    )


@dataclass(frozen=True)
class Tally:
    """Battles counted per (pair, length bucket, result).

    Pairs are ordered (``first[p] < second[p]``); ``counts[p, b]`` holds
    [first wins, second wins, tie, both bad]. ``feature[b]`` is the bucket's
    length difference (first minus second), scaled to unit root mean square.
    """

    models: list[str]
    first: IntArray
    second: IntArray
    counts: IntArray
    feature: FloatArray

    @property
    def style(self) -> bool:
        return int(self.feature.shape[0]) > 1


def tally(battles: Battles, *, style: bool = False) -> Tally:
    """Count the battles into cells; with ``style``, split each pair by length difference."""
    k = len(battles.models)
    a, b, outcome = battles.model_a, battles.model_b, battles.outcome
    swap = a > b
    first = np.where(swap, b, a)
    second = np.where(swap, a, b)
    # Seen from the pair's first model: a win of side "b" is a win of the first
    # model when the sides were swapped.
    result = outcome.copy()
    result[swap & (outcome == A_WINS)] = B_WINS
    result[swap & (outcome == B_WINS)] = A_WINS
    pair_code = first * k + second
    # Models are few: a k·k lookup numbers the pairs faster than sorting the battles.
    pairs = np.flatnonzero(np.bincount(pair_code, minlength=k * k))
    number = np.zeros(k * k, np.int64)
    number[pairs] = np.arange(len(pairs))
    pair_of = number[pair_code]
    buckets = STYLE_BUCKETS if style else 1
    if style:
        total = battles.len_a + battles.len_b
        diff = np.divide(
            battles.len_a - battles.len_b, total, out=np.zeros_like(total), where=total > 0
        )
        diff = np.where(swap, -diff, diff)
        bucket = np.rint((diff + 1) / 2 * (buckets - 1)).astype(np.int64)
        centres = np.linspace(-1.0, 1.0, buckets)
        rms = math.sqrt(float(np.mean(centres[bucket] ** 2))) if len(bucket) else 0.0
        feature = centres / rms if rms > 0 else np.zeros(buckets)
    else:
        bucket = np.zeros(len(battles), np.int64)
        feature = np.zeros(1)
    cell = (pair_of * buckets + bucket) * 4 + result
    counts = np.bincount(cell, minlength=len(pairs) * buckets * 4).reshape(len(pairs), buckets, 4)
    return Tally(
        models=list(battles.models),
        first=(pairs // k).astype(np.int64),
        second=(pairs % k).astype(np.int64),
        counts=counts.astype(np.int64),
        feature=feature,
    )


def _wins(counts: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """Each side's wins in a cell, a tie or both-bad being half a win to each."""
    half = 0.5 * counts[..., TIE:].sum(axis=-1)
    return counts[..., A_WINS] + half, counts[..., B_WINS] + half


def _newton(
    tally: Tally,
    wins_first: FloatArray,
    wins_second: FloatArray,
    start: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Maximum-likelihood log-strengths for R sets of cell counts at once.

    ``wins_*`` have shape (R, pairs, buckets); ``start`` is a first guess of all
    parameters (log-strengths, then the style coefficient). Returns log-strengths
    (R, models), centred on 0, and the style coefficient (R,) (zero without
    style control).
    """
    rounds = wins_first.shape[0]
    k = len(tally.models)
    size = k + (1 if tally.style else 0)
    f = tally.feature
    # The design: +1 for the pair's first model, -1 for its second.
    sign = np.zeros((len(tally.first), k))
    sign[np.arange(len(tally.first)), tally.first] = 1.0
    sign[np.arange(len(tally.first)), tally.second] = -1.0
    touches = np.abs(sign)
    # Where each pair's weight goes in the flattened k·k Hessian, off the diagonal.
    above = tally.first * k + tally.second
    below = tally.second * k + tally.first
    diagonal = np.arange(k) * (k + 1)
    n = wins_first + wins_second
    theta = np.zeros((rounds, size)) if start is None else np.tile(start, (rounds, 1))
    ridge = L2 * np.eye(size)
    for _ in range(100):
        d = theta[:, tally.first] - theta[:, tally.second]
        logit = d[:, :, None] + (theta[:, k, None, None] * f if tally.style else 0.0)
        p = 1.0 / (1.0 + np.exp(-logit))
        residual = wins_first - n * p
        weight = n * p * (1.0 - p)
        gradient = np.empty((rounds, size))
        gradient[:, :k] = residual.sum(axis=2) @ sign
        hessian = np.zeros((rounds, size, size))
        per_pair = weight.sum(axis=2)
        block = np.zeros((rounds, k * k))
        block[:, above] = -per_pair
        block[:, below] = -per_pair
        block[:, diagonal] = per_pair @ touches
        hessian[:, :k, :k] = block.reshape(rounds, k, k)
        if tally.style:
            gradient[:, k] = (residual * f).sum(axis=(1, 2))
            cross = (weight * f).sum(axis=2) @ sign
            hessian[:, :k, k] = cross
            hessian[:, k, :k] = cross
            hessian[:, k, k] = (weight * f * f).sum(axis=(1, 2))
        gradient -= theta @ ridge
        hessian += ridge
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        # Newton can overshoot far from the optimum; a bounded step stays on course.
        step = np.clip(step, -4.0, 4.0)
        theta += step
        if float(np.abs(step).max(initial=0.0)) < TOLERANCE:
            break
    strengths = theta[:, :k] - theta[:, :k].mean(axis=1, keepdims=True)
    gamma = theta[:, k] if tally.style else np.zeros(rounds)
    return strengths, gamma


def fit(tally: Tally) -> tuple[FloatArray, float]:
    """Log-strengths (natural log, centred on 0) and the style coefficient of all battles."""
    wins_first, wins_second = _wins(tally.counts[None].astype(np.float64))
    strengths, gamma = _newton(tally, wins_first, wins_second)
    return strengths[0], float(gamma[0])


def bootstrap(
    tally: Tally, *, rounds: int = 1000, seed: int = 0, chunk: int = 250
) -> tuple[FloatArray, FloatArray]:
    """Log-strengths (rounds, models) and style coefficients (rounds,) of resampled battles.

    Drawing N battles with replacement from N is a multinomial over the cells
    with each cell's share as its probability; only occupied cells can be drawn.
    """
    # Tie and both-bad weigh the same in the fit: one cell for both means fewer draws.
    cells = tally.counts[..., :3].copy()
    cells[..., TIE] += tally.counts[..., BOTH_BAD]
    flat = cells.reshape(-1)
    total = int(flat.sum())
    k = len(tally.models)
    if total == 0 or rounds == 0:
        return np.zeros((rounds, k)), np.zeros(rounds)
    occupied = np.flatnonzero(flat)
    shares = flat[occupied] / total
    rng = np.random.default_rng(seed)
    fitted, gamma = fit(tally)
    guess = np.append(fitted, gamma) if tally.style else fitted
    strengths, gammas = [], []
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        drawn = np.zeros((size, flat.shape[0]))
        drawn[:, occupied] = rng.multinomial(total, shares, size=size)
        wins_first, wins_second = _wins(drawn.reshape(size, *cells.shape))
        # Resampled data lie close to the full data: its fit is a near start.
        s, g = _newton(tally, wins_first, wins_second, start=guess)
        strengths.append(s)
        gammas.append(g)
    return np.concatenate(strengths), np.concatenate(gammas)


def to_score(log_strength: FloatArray | float) -> Any:
    """Natural log-strength on the Elo scale (1000 + 400 · log10 strength)."""
    return START + SCALE / math.log(BASE) * np.asarray(log_strength)


def ranks(lower: list[float], upper: list[float]) -> list[int]:
    """1 + how many models are surely better: their lower bound above this one's upper bound."""
    return [1 + sum(1 for lo in lower if lo > up) for up in upper]


def elo(battles: Battles, *, k: float = ELO_K) -> FloatArray:
    """Online Elo over the battles in order (K=4, scale 400, base 10, start 1000)."""
    ratings = [START] * len(battles.models)
    actual = (1.0, 0.0, 0.5, 0.5)  # by outcome code: a wins, b wins, tie, both bad
    for a, b, outcome in zip(
        battles.model_a.tolist(), battles.model_b.tolist(), battles.outcome.tolist(), strict=True
    ):
        rating_a, rating_b = ratings[a], ratings[b]
        expected = 1.0 / (1.0 + BASE ** ((rating_b - rating_a) / SCALE))
        delta = k * (actual[outcome] - expected)
        ratings[a] = rating_a + delta
        ratings[b] = rating_b - delta
    return np.asarray(ratings)


def pair_counts(tally: Tally) -> FloatArray:
    """counts[i, j] = [wins of i over j, losses, ties, both bad], summed over buckets."""
    k = len(tally.models)
    per_pair = tally.counts.sum(axis=1)
    counts = np.zeros((k, k, 4))
    counts[tally.first, tally.second] = per_pair
    counts[tally.second, tally.first] = per_pair[:, [B_WINS, A_WINS, TIE, BOTH_BAD]]
    return counts


def win_rates(counts: FloatArray) -> FloatArray:
    """rate[i, j]: the share of i's battles with j that i won, a tie counting half; NaN if none."""
    battles = counts.sum(axis=2)
    won = counts[..., 0] + 0.5 * (counts[..., 2] + counts[..., 3])
    rates: FloatArray = np.divide(won, battles, out=np.full_like(won, np.nan), where=battles > 0)
    return rates
