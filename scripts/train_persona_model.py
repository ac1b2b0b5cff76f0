"""Train the persona model shipped in src/advocado/text/lexicons/persona_model.json.

Training data: tests/data/voc_train.csv and tests/data/voc_dev.csv ONLY. The evaluation sets
(voc_eval.csv, voc_holdout.csv, voc_blind.csv) are never read here. Deterministic (lbfgs,
fixed folds): the same files give the same weights (tests/unit/test_persona_model.py checks
the shipped file against a fresh training).

    .venv/bin/python scripts/train_persona_model.py            # write the weights
    .venv/bin/python scripts/train_persona_model.py --cv       # 5-fold cross-validation only
    .venv/bin/python scripts/train_persona_model.py --check    # exit 1 if the shipped file differs

Needs scikit-learn (the `test` extra); the package itself does not.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAINING = [ROOT / "tests" / "data" / "voc_train.csv", ROOT / "tests" / "data" / "voc_dev.csv"]
OUTPUT = ROOT / "src" / "advocado" / "text" / "lexicons" / "persona_model.json"
C = 32.0  # inverse regularisation, chosen by --cv on the training data alone (plateau from 32)
MIN_DF = 2  # an n-gram must occur in two training comments
KEEP = 0.005  # n-grams whose weights are all smaller than this are dropped from the file
DIGITS = 4


def read_training() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for path in TRAINING:
        with path.open(encoding="utf-8") as file:
            for row in csv.DictReader(file):
                texts.append(row["text"])
                labels.append(row["persona"])
    return texts, labels


def featurise(texts: list[str]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(n-gram features, dense features) per text, exactly as persona_model.decide sees them."""
    from advocado.text.analyze import rules
    from advocado.text.lexicon import lexicon_for
    from advocado.text.persona_model import _scale, dense_features, gram_text, grams

    lexicon = lexicon_for()
    gram_rows, dense_rows = [], []
    for text in texts:
        read = rules(text, lexicon)
        found = [gram for sized in grams(gram_text(read)) for gram in sized]
        scale = _scale(len(found))
        counts: dict[str, float] = {}
        for gram in found:
            counts[gram] = counts.get(gram, 0.0) + scale
        gram_rows.append(counts)
        dense_rows.append(dense_features(read))
    return gram_rows, dense_rows


def fit(gram_rows: list[dict[str, float]], dense_rows: list[dict[str, float]],
        labels: list[str], c: float = C) -> dict[str, Any]:  # fmt: skip
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    from advocado.text.persona_model import CLASSES

    df = Counter(gram for row in gram_rows for gram in row)
    vocabulary = {gram for gram, count in df.items() if count >= MIN_DF}
    rows = []
    for grams_row, dense_row in zip(gram_rows, dense_rows, strict=True):
        row = {"g:" + gram: value for gram, value in grams_row.items() if gram in vocabulary}
        row.update({"d:" + name: value for name, value in dense_row.items()})
        rows.append(row)
    vectorizer = DictVectorizer(sort=True)
    matrix = vectorizer.fit_transform(rows)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, tol=1e-6)
    model.fit(matrix, labels)
    order = [list(model.classes_).index(name) for name in CLASSES]
    coef = model.coef_[order]
    weights: dict[str, Any] = {
        "classes": list(CLASSES),
        "intercept": [round(float(model.intercept_[i]), DIGITS) for i in order],
        "dense": {},
        "grams": {},
    }
    for column, name in enumerate(vectorizer.get_feature_names_out()):
        values = [round(float(coef[k, column]), DIGITS) for k in range(len(CLASSES))]
        if name.startswith("d:"):
            weights["dense"][name[2:]] = values
        elif max(abs(v) for v in values) >= KEEP:
            weights["grams"][name[2:]] = values
    return weights


def logits(weights: dict[str, Any], grams_row: dict[str, float],
           dense_row: dict[str, float]) -> list[float]:  # fmt: skip
    values = list(weights["intercept"])
    for gram, value in grams_row.items():
        for k, w in enumerate(weights["grams"].get(gram, ())):
            values[k] += w * value
    for name, value in dense_row.items():
        for k, w in enumerate(weights["dense"].get(name, ())):
            values[k] += w * value
    return values


def out_of_fold(gram_rows: list[dict[str, float]], dense_rows: list[dict[str, float]],
                labels: list[str], c: float = C) -> list[list[float]]:  # fmt: skip
    """Each training comment's logits from a model fitted on the other four folds."""
    from sklearn.model_selection import StratifiedKFold

    found: list[list[float]] = [[] for _ in labels]
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(gram_rows, labels)
    for train, test in folds:
        weights = fit([gram_rows[i] for i in train], [dense_rows[i] for i in train],
                      [labels[i] for i in train], c)  # fmt: skip
        for i in test:
            found[i] = logits(weights, gram_rows[i], dense_rows[i])
    return found


def temperature(found: list[list[float]], labels: list[str]) -> float:
    """The divisor of the logits that makes the out-of-fold probabilities honest (least
    log-loss): a strongly fitted model is over-confident, its confidence would say 0.99."""
    from advocado.text.persona_model import CLASSES

    def loss(t: float) -> float:
        total = 0.0
        for values, label in zip(found, labels, strict=True):
            scaled = [v / t for v in values]
            top = max(scaled)
            norm = top + math.log(sum(math.exp(v - top) for v in scaled))
            total += norm - scaled[CLASSES.index(label)]
        return total / len(labels)

    grid = [round(0.5 + 0.25 * step, 2) for step in range(31)]  # 0.5 .. 8
    return min(grid, key=loss)


def cross_validate(texts: list[str], labels: list[str], grid: list[float]) -> None:
    from advocado.text.analyze import rules
    from advocado.text.metrics import evaluate
    from advocado.text.persona_model import CLASSES

    gram_rows, dense_rows = featurise(texts)
    rule_only = [rules(text).persona for text in texts]
    print(f"rules alone on the training data: macro-F1 {evaluate(labels, rule_only).macro_f1}")
    for c in grid:
        found = out_of_fold(gram_rows, dense_rows, labels, c)
        predicted = [CLASSES[values.index(max(values))] for values in found]
        figures = evaluate(labels, predicted)
        recall = {k: v["recall"] for k, v in figures.per_label.items()}
        print(f"C={c:<6} 5-fold macro-F1 {figures.macro_f1:.4f}  recall {recall}  "
              f"temperature {temperature(found, labels)}")  # fmt: skip


def train() -> dict[str, Any]:
    texts, labels = read_training()
    gram_rows, dense_rows = featurise(texts)
    weights = fit(gram_rows, dense_rows, labels)
    weights["temperature"] = temperature(out_of_fold(gram_rows, dense_rows, labels), labels)
    return weights


def dump(weights: dict[str, Any]) -> str:
    return json.dumps(weights, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="cross-validate only")
    parser.add_argument("--grid", default="0.5,1,2,4,8,16")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file")
    args = parser.parse_args()
    if args.cv:
        texts, labels = read_training()
        print(f"{len(texts)} training comments: {dict(Counter(labels))}")
        cross_validate(texts, labels, [float(c) for c in args.grid.split(",")])
        return 0
    text = dump(train())
    if args.check:
        same = OUTPUT.read_text("utf-8") == text
        print("shipped weights match a fresh training" if same else "shipped weights differ")
        return 0 if same else 1
    OUTPUT.write_text(text, "utf-8")
    print(f"wrote {OUTPUT} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
