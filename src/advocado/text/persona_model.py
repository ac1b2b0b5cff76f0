"""The learned half of the persona classifier: a multinomial logistic regression over the
comment's character n-grams and the rules' signals (advocado.text.analyze.rules).

The weights (lexicons/persona_model.json) were trained at build time by
scripts/train_persona_model.py on tests/data/voc_train.csv and voc_dev.csv only (never on the
evaluation sets), and are shipped with the package: nothing is trained or downloaded at run
time. Prediction is a dictionary lookup per n-gram (pure Python, no numpy).

Evidence stays quoted from the comment: the rules' words and signals for the chosen persona,
plus the n-grams that pushed the model hardest towards it (merged into whole spans, a Latin
fragment widened to its word). A brand's own words still decide: each adds a large margin to
its persona, and ignore words (the brand's and the shipped ones, such as 手冲) are masked out
of the n-grams as they are out of the vocabulary.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advocado.text.analyze import Rules

CLASSES = ("emotional", "rational", "neutral")
NGRAM_MAX = 3
BEGIN, END = "\x02", "\x03"  # text boundaries: "^还行$" is not "还行" inside a sentence
_FOLD = re.compile(r"\d")
_SPACE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
BRAND_MARGIN = 4.0  # logit added per unit of brand-word weight: a brand word wins
BRAND_ENOUGH = 1.0  # as in the rules: a brand word of weight 1 is enough on its own (no neutral)
EVIDENCE_MIN = 1.0  # an n-gram's pull (its weight's margin over the next class) to be quoted
EVIDENCE_MAX = 3  # n-gram spans quoted at most
_LATIN = re.compile(r"[a-z0-9']")
_EDGES = re.compile(r"[^\W_](?:.*[^\W_])?", re.DOTALL)  # from the first to the last word character
UNIT_BINS = (0, 1, 2, 4, 8, 15, 30)


@dataclass(frozen=True)
class PersonaModel:
    intercept: tuple[float, float, float]
    temperature: float  # logits are divided by it: calibrated on out-of-fold training logits
    # n-gram -> (weight emotional, rational, neutral, then each class's margin over the
    # strongest other class: how hard the n-gram pulls towards it, for the evidence)
    grams: dict[str, tuple[float, ...]]
    dense: dict[str, tuple[float, float, float]]


def _with_margins(w: list[float]) -> tuple[float, ...]:
    return (*w, *(w[k] - max(w[i] for i in range(3) if i != k) for k in range(3)))


@cache
def model() -> PersonaModel:
    """The shipped weights."""
    raw = json.loads(
        (resources.files("advocado.text") / "lexicons" / "persona_model.json").read_text("utf-8")
    )
    if tuple(raw["classes"]) != CLASSES:  # pragma: no cover - written by the training script
        raise ValueError("persona_model.json: unexpected classes")
    return PersonaModel(
        intercept=tuple(raw["intercept"]),
        temperature=float(raw["temperature"]),
        grams={gram: _with_margins(w) for gram, w in raw["grams"].items()},
        dense={name: tuple(w) for name, w in raw["dense"].items()},
    )


def gram_text(read: Rules) -> str:
    """The text the n-grams are taken from: normalised (simplified, lower case, half-width),
    digits folded to 0, ignore terms blanked, framed by BEGIN and END. Same length plus two,
    so offset i here is offset i - 1 in the comment."""
    normal = read.normal.translate(_SPACE)
    if read.ignored:
        chars = list(normal)
        for start, end in read.ignored:
            chars[start:end] = " " * (end - start)
        normal = "".join(chars)
    return BEGIN + _FOLD.sub("0", normal) + END


def grams(text: str) -> list[Iterator[str]]:
    """The character n-grams of `text`, one iterator per size 1..NGRAM_MAX, each in text
    order (built by C-level map/zip: this runs for every comment). Training
    (scripts/train_persona_model.py) and prediction both use this."""
    found: list[Iterator[str]] = [iter(text)]
    for size in range(2, NGRAM_MAX + 1):
        found.append(map("".join, zip(*(text[k:] for k in range(size)), strict=False)))
    return found


def dense_features(read: Rules) -> dict[str, float]:
    """The rules' signals as model inputs, each named and bounded."""
    features = {
        "lex:emotional": min(read.score["emotional"], 4.0) / 2,
        "lex:rational": min(read.score["rational"], 4.0) / 2,
        f"rules:{read.persona}": 1.0,
        "sentiment:positive": max(0.0, read.sentiment),
        "sentiment:negative": max(0.0, -read.sentiment),
        "sentiment:magnitude": min(read.magnitude, 3.0) / 3,
    }
    if read.fallback:
        features["rules:fallback"] = 1.0
    for name, value in read.signals.items():
        if value:
            features[f"signal:{name}"] = value
    units = read.units
    size = sum(1 for edge in UNIT_BINS if units > edge)
    features[f"units:{size}"] = 1.0
    return features


def _scale(count: int) -> float:
    return 1.0 / math.sqrt(count) if count else 0.0


def decide(read: Rules) -> tuple[str, float, list[str]]:
    """(persona, confidence, evidence) of one comment."""
    weights = model()
    get = weights.grams.get
    looked = [list(map(get, sized)) for sized in grams(gram_text(read))]
    scale = _scale(sum(map(len, looked)))
    logits = list(weights.intercept)
    found = [w for sized in looked for w in sized if w is not None]
    if found:
        for k, total in enumerate(map(sum, zip(*found, strict=True))):
            if k == 3:
                break
            logits[k] += total * scale
    for name, value in dense_features(read).items():
        w = weights.dense.get(name)
        if w is not None:
            logits[0] += w[0] * value
            logits[1] += w[1] * value
            logits[2] += w[2] * value
    logits = [value / weights.temperature for value in logits]
    brand_weight = 0.0
    for index, persona in enumerate(CLASSES[:2]):
        for _, _, weight in read.brand[persona]:
            logits[index] += BRAND_MARGIN * weight
            brand_weight = max(brand_weight, weight)
    top = max(logits)
    exps = [math.exp(value - top) for value in logits]
    chosen = exps.index(max(exps))
    if chosen == 2 and brand_weight >= BRAND_ENOUGH:
        chosen = 0 if logits[0] >= logits[1] else 1  # a brand word is enough on its own
    persona = CLASSES[chosen]
    confidence = round(min(0.999, exps[chosen] / sum(exps)), 3)  # never claims certainty
    if persona == "neutral":
        return persona, confidence, []
    margin = 3 + chosen
    pulled = [(w[margin], at - 1, at - 1 + size)
              for size, sized in enumerate(looked, 1)
              for at, w in enumerate(sized) if w is not None and w[margin] > 0]  # fmt: skip
    return persona, confidence, _evidence(read, persona, pulled)


def _evidence(read: Rules, persona: str, pulled: list[tuple[float, int, int]]) -> list[str]:
    """The rules' evidence for the persona, then the EVIDENCE_MAX n-grams that pull hardest
    towards it (two characters at least, pull above EVIDENCE_MIN; if that leaves nothing at
    all, the one n-gram that pulls hardest), widened to whole Latin words, trimmed of
    punctuation; overlapping or space-separated spans merged; all quoted as written."""
    from advocado.text.analyze import _ordered

    items = list(read.found[persona])
    if read.fallback and read.persona == persona:
        items += read.sentiment_words
    text, normal = read.text, read.normal
    spans = [(at, at + len(surface)) for at, surface in items]
    ranked = sorted(pulled, reverse=True)
    strong = [item for item in ranked if item[0] >= EVIDENCE_MIN and item[2] - item[1] >= 2]
    taken = 0
    # Nothing else to show: the n-gram that pulls hardest (a label always says why).
    for _, start, end in strong if strong or spans else ranked:
        start, end = max(0, start), min(len(text), end)
        while start > 0 and _LATIN.match(normal[start]) and _LATIN.match(normal[start - 1]):
            start -= 1
        while 0 < end < len(text) and _LATIN.match(normal[end - 1]) \
                and _LATIN.match(normal[end]):  # fmt: skip
            end += 1
        trimmed = _EDGES.search(text, start, end)  # no punctuation or space at either end
        if trimmed:
            spans.append(trimmed.span())
            taken += 1
            if taken == (EVIDENCE_MAX if strong else 1):
                break
    # Overlapping spans, or spans only a space apart ("makes me smile"), are quoted as one.
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and (start < merged[-1][1] or text[merged[-1][1] : start].isspace()):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    items = [(start, text[start:end]) for start, end in merged]
    return _ordered(items)
