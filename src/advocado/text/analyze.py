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

CLAUSE_END = re.compile(r"[，。！？；,.!?;\n…~～、]")  # 、 too: "不多、价格" is two items
EXCLAMATION = re.compile(r"[!！]+")
EXCLAMATION_WEIGHT, EXCLAMATION_CAP = 0.5, 1.5
# Any emoji or pictograph codepoint shows feeling (ranges of Unicode's emoji blocks, no list).
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\u3297\u3299]")
EMOJI_WEIGHT, EMOJI_CAP = 1.0, 3.0
# A letter stretched (soooo, loooove) or one Chinese character said three times (太太太, 哈哈哈).
REPEATED = re.compile(r"([a-z])\1{2,}|([\u4e00-\u9fff])\2{2,}")
REPEATED_WEIGHT, REPEATED_CAP = 0.5, 1.0
# An intensifier on a feeling-neutral positive word ("真的太好", "so good") leans emotional.
INTENSE_DEGREE, INTENSE_WEIGHT = 1.3, 0.5
# Figures with a unit ("30%", "2天", "2 days", "10 hours", "¥99") are the stuff of reasons.
FIGURE = re.compile(
    r"[$¥￥€£]\s?\d|\d+(?:\.\d+)?\s?(?:%|倍|小时|分钟|秒|天|周|个月|月|年|元|块|次|个|件|斤|公斤|克|米"
    r"|寸|g[bh]z?\b|mb\b|kg\b|ms\b|k\b|hours?|hrs?|h\b|minutes?|mins?|seconds?|secs?|days?"
    r"|weeks?|months?|years?|percent|dollars?|bucks|users|people|times|x\b)"
)
FIGURE_WEIGHT, FIGURE_CAP = 0.5, 1.0
# Reasoning: comparisons and causal connectives.
REASONING = re.compile(
    r"比(?:起|较下来)?[^，。！？,.!?、]{1,8}(?:更|还|要|快|慢|好|差|便宜|贵|强|稳)|相比|对比|比起"
    r"|因为|所以|由于|因此|导致|以致|以便|否则|不仅|而且|首先|其次|另外"
    r"|(?<![a-z])(?:than|compared (?:to|with)|versus|vs\.?|because|since|so that|therefore"
    r"|due to|thanks to|which means|as a result)(?![a-z])"
)
REASONING_WEIGHT, REASONING_CAP = 0.5, 1.0
# A list of attributes: items separated by 、 or three short clauses or more.
LIST_SEPARATOR = re.compile("、")
LIST_WEIGHT = 0.5
# Comments with sentiment but no persona word: long enough to say something -> a persona by
# the structural signals (ties: emotional, feeling without reasons); shorter -> neutral.
FALLBACK_MIN_UNITS, FALLBACK_MIN_SENTIMENT = 8, 0.6
LATIN_WORD = re.compile(r"[a-z0-9']+")
HAN_CHAR = re.compile("[\u4e00-\u9fff]")
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


@dataclass
class Rules:
    """What the vocabulary and the structural signals see in one comment: the inputs of the
    learned model (advocado.text.persona_model) and the rule-only decision."""

    text: str
    normal: str
    sentiment: float
    magnitude: float
    score: dict[str, float]
    found: dict[str, list[tuple[int, str]]]  # persona -> (offset, surface) evidence
    sentiment_words: list[tuple[int, str]]
    signals: dict[str, float]  # exclamation, emoji, figure, reasoning, list, repeated, intense
    units: int
    persona: str  # the rules' own decision (before the model)
    confidence: float
    evidence: list[str]
    fallback: bool  # decided by _says_enough (no persona word, long enough)
    ignored: list[tuple[int, int]]  # spans an ignore term covers: no evidence, no n-gram
    brand: dict[str, list[tuple[int, str, float]]]  # persona -> brand words found (weight)


def rules(text: str | None, lexicon: Lexicon | None = None) -> Rules:
    """The rule-based reading of one comment (vocabulary, negation, degree, structure)."""
    text = text or ""
    lexicon = lexicon or lexicon_for()
    normal = normalise(text)
    scanned = lexicon.scan(normal)
    ignored = [(start, end) for start, end, entry in scanned
               if entry.modifier == "ignore" and not entry.is_word]  # fmt: skip
    hits = [hit for hit in scanned if hit[2].modifier != "ignore" or hit[2].is_word]
    score = {EMOTIONAL: 0.0, RATIONAL: 0.0}
    found: dict[str, list[tuple[int, str]]] = {EMOTIONAL: [], RATIONAL: []}
    brand: dict[str, list[tuple[int, str, float]]] = {EMOTIONAL: [], RATIONAL: []}
    sentiment_words: list[tuple[int, str]] = []
    total = magnitude = 0.0
    intense: list[tuple[int, str]] = []
    spans = [(start, end) for start, end, _ in hits]

    pending_start: int | None = None  # where the modifiers before the current word begin
    degree, negation, strong = 1.0, None, False  # strong: an intensifier (非常, so) precedes
    previous_end = 0
    for index, (start, end, entry) in enumerate(hits):
        if pending_start is not None and (
            start - previous_end > REACH_LATIN or CLAUSE_END.search(normal, previous_end, start)
        ):
            pending_start, degree, negation, strong = None, 1.0, None, False
        if entry.modifier and entry.modifier != "ignore" and _modifies_next(hits, index, normal):
            if pending_start is None:
                pending_start = start
            if entry.modifier == "negator":
                negation = entry.factor if negation is None else None  # 不是不好: flips back
            else:
                degree *= entry.factor
                strong = strong or (entry.factor >= INTENSE_DEGREE and not entry.is_word)
            previous_end = end
            continue
        if not entry.is_word:
            pending_start, degree, negation, strong = None, 1.0, None, False
            previous_end = end
            continue
        span_start = start if negation is None or pending_start is None else pending_start
        surface = text[span_start:end]
        value = entry.polarity * degree
        if negation is not None:
            value = -value * (negation if value > 0 else negation * 0.6)
        if value > 0 and entry.persona is None and negation is None and strong:
            at = start if pending_start is None else pending_start
            intense.append((at, text[at:end]))
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
            if entry.brand:
                brand[entry.persona].append((span_start, surface, entry.weight))
        pending_start, degree, negation, strong = None, 1.0, None, False
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
    figure = _capped(FIGURE.finditer(normal), FIGURE_WEIGHT, FIGURE_CAP, found[RATIONAL], text)
    reasoning = _capped(REASONING.finditer(normal), REASONING_WEIGHT, REASONING_CAP,
                        found[RATIONAL], text)  # fmt: skip
    separators = LIST_SEPARATOR.findall(normal)
    listed = LIST_WEIGHT * min(2, len(separators))
    repeated = _capped(REPEATED.finditer(normal), REPEATED_WEIGHT, REPEATED_CAP,
                       found[EMOTIONAL], text)  # fmt: skip
    score[RATIONAL] += figure + reasoning + listed
    score[EMOTIONAL] += repeated
    if intense:
        score[EMOTIONAL] += INTENSE_WEIGHT
        found[EMOTIONAL].extend(intense[:1])

    sentiment = total / max(1.0, magnitude)
    if exclaim and sentiment:
        sentiment *= 1.15
    sentiment = round(max(-1.0, min(1.0, sentiment)), 3)
    persona, confidence = _decide(score)
    evidence = [] if persona == NEUTRAL else _ordered(found[persona])
    units = _units(normal)
    fallback = persona == NEUTRAL and _says_enough(units, magnitude, score)
    if fallback:
        persona = RATIONAL if score[RATIONAL] > score[EMOTIONAL] else EMOTIONAL
        confidence = round(0.45 + 0.1 * min(1.0, magnitude), 2)
        evidence = _ordered(found[persona] + sentiment_words)
    signals = {"exclamation": exclaim, "emoji": emoji, "figure": figure,
               "reasoning": reasoning, "list": listed, "repeated": repeated,
               "intense": INTENSE_WEIGHT if intense else 0.0}  # fmt: skip
    return Rules(text, normal, sentiment, magnitude, score, found, sentiment_words, signals,
                 units, persona, confidence, evidence, fallback, ignored, brand)  # fmt: skip


def analyze(text: str | None, lexicon: Lexicon | None = None, *, learned: bool = True) -> Analysis:
    """Analyse one comment. `lexicon`: the built-in one unless a brand's is given.
    `learned=False`: the rules alone, without the learned model (for comparison)."""
    read = rules(text, lexicon)
    persona, confidence, evidence = read.persona, read.confidence, read.evidence
    if learned:
        from advocado.text.persona_model import decide

        persona, confidence, evidence = decide(read)
    text = read.text
    return Analysis(
        language=detect_language(text) if text.strip() else OTHER,
        sentiment=read.sentiment,
        persona=persona,
        confidence=confidence,
        evidence=evidence,
        sentiment_words=_ordered(read.sentiment_words),
        scores={name: round(value, 2) for name, value in read.score.items()},
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


def _capped(matches: Any, weight: float, cap: float, found: list[tuple[int, str]],
            text: str) -> float:  # fmt: skip
    """Adds each match as evidence (quoted from the original text) up to `cap` of weight."""
    total = 0.0
    for match in matches:
        if total >= cap:
            break
        total += weight
        found.append((match.start(), text[match.start() : match.end()]))
    return min(total, cap)


def _units(normal: str) -> int:
    """Length in words: a Chinese character counts as one, so does a Latin word."""
    return len(HAN_CHAR.findall(normal)) + len(LATIN_WORD.findall(normal))


def _says_enough(units: int, magnitude: float, score: dict[str, float]) -> bool:
    """A comment with no persona word still has one when it carries clear sentiment or some
    structural signal and is long enough not to be a generic verdict ("还行", "not bad")."""
    if units < FALLBACK_MIN_UNITS:
        return False
    return magnitude >= FALLBACK_MIN_SENTIMENT or max(score.values()) >= 0.5


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
