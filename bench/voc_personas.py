"""How the positive reviews in ../shared/data split into personas, with 20 random examples of
each for a reader to judge (issue 3). Sources: ChnSentiCorp hotels, waimai, online shopping
(label 1), UCI sentences (label 1), NPS verbatims scored 9-10.

    .venv/bin/python bench/voc_personas.py [--examples 20] [--seed 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

# ADVOCADO_SHARED_DATA: where ../shared/data is when the checkout is not beside it (a worktree)
BESIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED = Path(os.environ.get("ADVOCADO_SHARED_DATA", BESIDE))


def _labelled_csv(path: Path, label: str = "label", text: str = "review") -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        return [row[text] for row in csv.DictReader(file) if row[label] == "1" and row[text]]


def positive_reviews() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    hotels = SHARED / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv"
    if hotels.exists():
        found["chnsenticorp hotels"] = _labelled_csv(hotels)
    waimai = SHARED / "waimai_10k" / "waimai_10k.csv"
    if waimai.exists():
        found["waimai"] = _labelled_csv(waimai)
    shopping = SHARED / "online_shopping_10_cats.zip"
    if shopping.exists():
        with zipfile.ZipFile(shopping) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            text = archive.read(name).decode("utf-8-sig")
        found["online shopping"] = [row["review"] for row in csv.DictReader(io.StringIO(text))
                                    if row["label"] == "1" and row["review"]]  # fmt: skip
    uci = SHARED / "uci_sentiment_labelled_sentences"
    if uci.is_dir():
        lines: list[str] = []
        for path in sorted(uci.glob("*.txt")):
            for line in path.read_text("utf-8", errors="replace").splitlines():
                sentence, _, label = line.rpartition("\t")
                if label.strip() == "1" and sentence.strip():
                    lines.append(sentence.strip())
        found["uci sentences"] = lines
    verbatims = SHARED / "nps_verbatims_textsummary" / "text_data.csv"
    if verbatims.exists():
        with verbatims.open(encoding="utf-8", errors="replace") as file:
            found["nps verbatims 9-10"] = [
                row["text"] for row in csv.DictReader(file)
                if row["text"] and row["NPS_SCORE"].strip().isdigit()
                and int(row["NPS_SCORE"]) >= 9
            ]  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (../shared/data beside the checkout)")
        return
    from advocado.text import analyze, lexicon_for

    lexicon = lexicon_for()
    examples: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
    total: Counter[str] = Counter()
    for source, texts in positive_reviews().items():
        split = Counter()
        for text in texts:
            analysis = analyze(text, lexicon)
            split[analysis.persona] += 1
            examples[analysis.persona].append((source, text, analysis.evidence))
        total.update(split)
        n = len(texts)
        print(f"{source:<22} {n:>6,} positive: " + ", ".join(
            f"{p} {split[p] / n:.0%}" for p in ("emotional", "rational", "neutral")))  # fmt: skip
    n = sum(total.values())
    print(f"{'all':<22} {n:>6,} positive: " + ", ".join(
        f"{p} {total[p] / n:.0%}" for p in ("emotional", "rational", "neutral")))  # fmt: skip
    rng = random.Random(args.seed)
    for persona in ("emotional", "rational", "neutral"):
        print(f"\n--- {persona}: {args.examples} random examples (source | evidence | text)")
        pool = examples[persona]
        for source, text, evidence in rng.sample(pool, min(args.examples, len(pool))):
            short = " ".join(text.split())[:140]
            print(f"[{source}] {evidence} {short}")


if __name__ == "__main__":
    sys.exit(main())
