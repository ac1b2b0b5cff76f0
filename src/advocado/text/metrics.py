"""Accuracy, macro-F1 and the confusion matrix of predicted against expected labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LABELS = ("emotional", "rational", "neutral")


@dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]
    total: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]  # precision, recall, f1, support
    confusion: dict[str, dict[str, int]]  # expected -> predicted -> count

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_label": self.per_label,
            "confusion": self.confusion,
        }


def evaluate(
    expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = LABELS
) -> Evaluation:
    if len(expected) != len(predicted):
        raise ValueError("expected and predicted differ in length")
    confusion = {gold: dict.fromkeys(labels, 0) for gold in labels}
    for gold, guess in zip(expected, predicted, strict=True):
        confusion[gold][guess] += 1
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        true_positive = confusion[label][label]
        predicted_as = sum(confusion[gold][label] for gold in labels)
        support = sum(confusion[label].values())
        precision = true_positive / predicted_as if predicted_as else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(f1, 4), "support": support}  # fmt: skip
    total = len(expected)
    correct = sum(confusion[label][label] for label in labels)
    return Evaluation(
        labels=tuple(labels),
        total=total,
        accuracy=round(correct / total, 4) if total else 0.0,
        macro_f1=round(sum(p["f1"] for p in per_label.values()) / len(labels), 4),
        per_label=per_label,
        confusion=confusion,
    )
