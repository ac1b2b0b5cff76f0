"""What one comment says: language, sentiment with the words that carried it, and the persona
(emotional / rational / neutral) with a confidence and the evidence that decided it.

Pure rules over the lexicon, no I/O. The persona is how the customer talks, whatever the
polarity: feelings (love, surprise, being moved, slang, emoji, exclamation) make a comment
emotional; concrete reasons (stability, features, price, ROI, efficiency, logic, delivery,
quality, support speed) make it rational; a comment with neither is neutral ("还行", "ok").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from advocado.text.language import OTHER, detect_language
from advocado.text.lexicon import Entry, Lexicon, lexicon_for, normalise

EMOTIONAL, RATIONAL, NEUTRAL = "emotional", "rational", "neutral"
NEUTRAL_BELOW = 1.0  # a persona needs at least one clear word's worth of signal

CLAUSE_END = re.compile(r"[，。！？；,.!?;\n…~～]")
EXCLAMATION = re.compile(r"[!！]+")
EXCLAMATION_WEIGHT, EXCLAMATION_CAP = 0.5, 1.5
# Any pictograph the lexicon does not list still shows feeling.
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]")
EMOJI_WEIGHT, EMOJI_CAP = 1.0, 3.0
# Figures with a unit ("30%", "两天" is words, "2 days", "10 hours") are the stuff of reasons.
FIGURE = re.compile(
    r"\d+(?:\.\d+)?\s?(?:%|倍|小时|分钟|天|周|个月|年|hours?|hrs?|minutes?|mins?|days?|weeks?"
    r"|months?|percent|x\b)"
)
FIGURE_WEIGHT, FIGURE_CAP = 0.5, 1.0
# How far (in characters) a modifier reaches forward: CJK words are dense, English are not.
REACH_CJK, REACH_LATIN = 2, 12


@dataclass(frozen=True)
class Analysis:
    language: str
    sentiment: float  # -1 .. 1
    persona: str  # emotional / rational / neutral
    confidence: float  # 0 .. 1
    evidence: list[str] = field(default_factory=list)  # as written in the comment, in order
    sentiment_words: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # emotional / rational signal

    def as_dict(self) -> dict[str, Any]:
        """The batch contract's fields (without the id)."""
        return {
            "language": self.language,
            "sentiment": self.sentiment,
            "persona": self.persona,
            "confidence": self.confidence,
            "evidence": list(self.evidence),
        }


def _reach(entry: Entry) -> int:
    return REACH_LATIN if entry.term[0].isascii() else REACH_CJK


def analyze(text: str | None, lexicon: Lexicon | None = None) -> Analysis:
    """Analyse one comment. `lexicon`: the built-in one unless a brand's is given."""
    text = text or ""
    lexicon = lexicon or lexicon_for()
    normal = normalise(text)
    hits = [hit for hit in lexicon.scan(normal) if hit[2].modifier != "ignore" or hit[2].is_word]
    score = {EMOTIONAL: 0.0, RATIONAL: 0.0}
    found: dict[str, list[tuple[int, str]]] = {EMOTIONAL: [], RATIONAL: []}
    sentiment_words: list[tuple[int, str]] = []
    total = magnitude = 0.0
    spans = [(start, end) for start, end, _ in hits]

    pending_start: int | None = None  # where the modifiers before the current word begin
    degree, negation = 1.0, None
    previous_end = 0
    for index, (start, end, entry) in enumerate(hits):
        if pending_start is not None and (
            start - previous_end > REACH_LATIN or CLAUSE_END.search(normal, previous_end, start)
        ):
            pending_start, degree, negation = None, 1.0, None
        if entry.modifier and entry.modifier != "ignore" and _modifies_next(hits, index, normal):
            if pending_start is None:
                pending_start = start
            if entry.modifier == "negator":
                negation = entry.factor if negation is None else None  # 不是不好: flips back
            else:
                degree *= entry.factor
            previous_end = end
            continue
        if not entry.is_word:
            pending_start, degree, negation = None, 1.0, None
            previous_end = end
            continue
        span_start = start if negation is None or pending_start is None else pending_start
        surface = text[span_start:end]
        value = entry.polarity * degree
        if negation is not None:
            value = -value * (negation if value > 0 else negation * 0.6)
        if value:
            total += value
            magnitude += abs(value)
            sentiment_words.append((span_start, surface))
        if entry.persona in score:
            weight = entry.weight
            if negation is not None and entry.persona == EMOTIONAL:
                weight *= 0.5  # "一点都不惊喜" still speaks of feeling, less loudly
            score[entry.persona] += weight
            found[entry.persona].append((span_start, surface))
        pending_start, degree, negation = None, 1.0, None
        previous_end = end

    exclaim = 0.0
    for match in EXCLAMATION.finditer(text):
        if exclaim < EXCLAMATION_CAP:
            exclaim = min(EXCLAMATION_CAP, exclaim + EXCLAMATION_WEIGHT * len(match.group()))
            found[EMOTIONAL].append((match.start(), match.group()))
    score[EMOTIONAL] += exclaim
    emoji = 0.0
    for match in EMOJI.finditer(text):
        at = match.start()
        if emoji < EMOJI_CAP and not any(start <= at < end for start, end in spans):
            emoji += EMOJI_WEIGHT
            found[EMOTIONAL].append((match.start(), match.group()))
    score[EMOTIONAL] += emoji
    figures = 0.0
    for match in FIGURE.finditer(normal):
        if figures < FIGURE_CAP:
            figures += FIGURE_WEIGHT
            found[RATIONAL].append((match.start(), text[match.start() : match.end()]))
    score[RATIONAL] += figures

    sentiment = total / max(1.0, magnitude)
    if exclaim and sentiment:
        sentiment *= 1.15
    sentiment = round(max(-1.0, min(1.0, sentiment)), 3)
    persona, confidence = _decide(score)
    evidence = [] if persona == NEUTRAL else _ordered(found[persona])
    return Analysis(
        language=detect_language(text) if text.strip() else OTHER,
        sentiment=sentiment,
        persona=persona,
        confidence=confidence,
        evidence=evidence,
        sentiment_words=_ordered(sentiment_words),
        scores={name: round(value, 2) for name, value in score.items()},
    )


MEMO_LIMIT = 200_000


def analyze_cached(text: str, lexicon: Lexicon) -> Analysis:
    """analyze(), remembered per distinct text for as long as the lexicon lives: imports
    repeat the same comments ("好评", "ok") many times. Bounded; emptied when full."""
    memo = lexicon.memo
    found = memo.get(text)
    if found is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        found = memo[text] = analyze(text, lexicon)
    return found


def _modifies_next(hits: list[tuple[int, int, Entry]], index: int, normal: str) -> bool:
    """A modifier acts only on a word close after it in the same clause; otherwise a term
    that is also a word (好) counts as that word."""
    end, entry = hits[index][1], hits[index][2]
    if index + 1 >= len(hits):
        return not entry.is_word
    start = hits[index + 1][0]
    if start - end > _reach(entry) or CLAUSE_END.search(normal, end, start):
        return not entry.is_word
    return True


def _decide(score: dict[str, float]) -> tuple[str, float]:
    emotional, rational = score[EMOTIONAL], score[RATIONAL]
    top = max(emotional, rational)
    if top < NEUTRAL_BELOW:
        return NEUTRAL, round(0.95 - 0.4 * top, 2)
    persona = EMOTIONAL if emotional > rational else RATIONAL  # a tie: the concrete side
    other = min(emotional, rational)
    margin = (top - other) / (top + other)
    strength = min(1.0, top / 3)
    return persona, round(min(0.99, 0.4 + 0.3 * margin + 0.29 * strength), 2)


def _ordered(items: list[tuple[int, str]]) -> list[str]:
    seen: set[str] = set()
    result = []
    for _, surface in sorted(items, key=lambda item: item[0]):
        if surface not in seen:
            seen.add(surface)
            result.append(surface)
    return result
