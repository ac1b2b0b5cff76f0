"""Persona classification throughput (issue 3): the 62,774 reviews of
../shared/data/online_shopping_10_cats.zip classified, and in the same run the rate of bare
jieba segmentation (jieba.lcut) over the same texts. Goal: classify/segment >= 0.5.

    .venv/bin/python bench/voc_bench.py
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ADVOCADO_SHARED_DATA: where ../shared/data is when the checkout is not beside it (a worktree)
SHARED = Path(os.environ.get("ADVOCADO_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHOPPING = SHARED / "online_shopping_10_cats.zip"
CHUNK = 2000


def reviews() -> list[str]:
    with zipfile.ZipFile(SHOPPING) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".csv"))
        text = archive.read(name).decode("utf-8-sig")  # the first header cell has a BOM
    rows = csv.DictReader(io.StringIO(text))
    return [row["review"] or "" for row in rows]


def main() -> None:
    if not SHOPPING.exists():
        print(f"skipped: {SHOPPING} not found (../shared/data beside the checkout)")
        return
    import jieba

    from advocado.text import analyze, lexicon_for

    texts = reviews()
    lexicon = lexicon_for()
    analyze("warm up", lexicon)  # compile the lexicon outside the timing
    jieba.setLogLevel(60)
    jieba.initialize()  # load the dictionary outside the timing

    # The three are timed in turns over chunks of the same texts, so that a machine shared with
    # other work slows them alike and the ratios stay fair.
    personas: Counter[str] = Counter()
    classify = segment = rules_only = 0.0
    for at in range(0, len(texts), CHUNK):
        chunk = texts[at : at + CHUNK]
        started = time.perf_counter()
        personas.update(analyze(text, lexicon).persona for text in chunk)
        classify += time.perf_counter() - started

        started = time.perf_counter()
        for text in chunk:
            jieba.lcut(text)
        segment += time.perf_counter() - started

        started = time.perf_counter()  # the rules alone, without the learned persona model
        for text in chunk:
            analyze(text, lexicon, learned=False)
        rules_only += time.perf_counter() - started

    n = len(texts)
    print(f"{n:,} reviews ({sum(map(len, texts)) / n:.0f} characters on average)")
    print(f"classify  {n / classify:>9,.0f} comments/s  ({classify:.2f} s)")
    print(f"jieba     {n / segment:>9,.0f} comments/s  ({segment:.2f} s)  jieba.lcut, default mode")
    print(f"rules     {n / rules_only:>9,.0f} comments/s  ({rules_only:.2f} s)  without the model")
    print(f"ratio classify/segment {segment / classify:.2f} (goal >= 0.5); "
          f"rules alone/segment {segment / rules_only:.2f}")  # fmt: skip
    print("personas: " + ", ".join(f"{k} {v:,}" for k, v in personas.most_common()))


if __name__ == "__main__":
    sys.exit(main())
