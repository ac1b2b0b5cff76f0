"""Which language a comment is written in: zh-Hans, zh-Hant, en or other."""

from __future__ import annotations

import re
from functools import cache

from advocado.text.lexicon import script_sets

ZH_HANS, ZH_HANT, EN, OTHER = "zh-Hans", "zh-Hant", "en", "other"
LANGUAGES = (ZH_HANS, ZH_HANT, EN, OTHER)

HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
SIMPLIFIED_MARK, TRADITIONAL_MARK = "\x01", "\x02"
LETTER = re.compile("[A-Za-z]")
# Kana, hangul, Cyrillic, Greek, Arabic, Thai, accented Latin: languages we do not analyse.
FOREIGN = re.compile(
    "[\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u0600-\u06ff\u0e00-\u0e7f\u3040-\u30ff\uac00-\ud7af]"
)


@cache
def _script_marks() -> dict[int, str]:
    # str.translate marks each script's own characters in one C pass; a regex character
    # class of thousands of characters would be scanned linearly per character.
    simplified, traditional = script_sets()
    marks = {ord(char): SIMPLIFIED_MARK for char in simplified}
    marks.update({ord(char): TRADITIONAL_MARK for char in traditional})
    return marks


def detect_language(text: str) -> str:
    """Chinese as soon as Chinese characters carry a fair part of the text: one character
    weighs about a word, so "ROI很高" is Chinese and "Great product 赞" is English.
    Simplified or traditional by the characters only one of the two scripts uses."""
    letters = len(LETTER.findall(text))
    if text.isascii():
        return EN if letters else OTHER
    han = len(HAN.findall(text))
    foreign = len(FOREIGN.findall(text))
    if han and han * 4 >= letters and foreign * 2 <= han:
        marked = text.translate(_script_marks())
        hant = marked.count(TRADITIONAL_MARK) > marked.count(SIMPLIFIED_MARK)
        return ZH_HANT if hant else ZH_HANS
    if letters and foreign * 20 <= letters:
        return EN
    return OTHER
