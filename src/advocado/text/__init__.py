"""VoC text analytics: language, sentiment, persona classifier, lexicons (pure, no I/O)."""

from advocado.text.analyze import EMOTIONAL, NEUTRAL, RATIONAL, Analysis, analyze
from advocado.text.language import detect_language
from advocado.text.lexicon import BrandTerm, Lexicon, lexicon_for

__all__ = ["EMOTIONAL", "NEUTRAL", "RATIONAL", "Analysis", "BrandTerm", "Lexicon", "analyze",
           "detect_language", "lexicon_for"]  # fmt: skip
