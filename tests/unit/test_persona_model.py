"""The learned half of the persona classifier (advocado.text.persona_model): where its
weights come from, what they were trained on, its evidence, and the brand words over it."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from advocado.text import BrandTerm, analyze, lexicon_for
from advocado.text.analyze import rules
from advocado.text.metrics import evaluate
from advocado.text.persona_model import CLASSES, decide, gram_text, grams, model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TRAINING = ("voc_train.csv", "voc_dev.csv")
EVALUATION = ("voc_eval.csv", "voc_holdout.csv", "voc_blind.csv")


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _trainer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "train_persona_model", ROOT / "scripts" / "train_persona_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_training_set_is_large_varied_and_labelled_by_the_rule() -> None:
    rows = _rows("voc_train.csv")
    assert len(rows) >= 1300
    assert {row["persona"] for row in rows} == set(CLASSES)
    languages = {row["language"] for row in rows}
    assert {"zh-Hans", "zh-Hant", "en", "other"} <= languages
    assert len({row["id"] for row in rows}) == len(rows)
    assert all(row["text"].strip() for row in rows)


def test_no_training_comment_is_in_an_evaluation_set() -> None:
    trained = {row["text"].strip() for name in TRAINING for row in _rows(name)}
    for name in EVALUATION:
        shared = sum(1 for row in _rows(name) if row["text"].strip() in trained)
        assert shared == 0, f"{name}: {shared} comments also in the training data"  # count only


def test_trainer_reads_no_evaluation_set() -> None:
    source = (ROOT / "scripts" / "train_persona_model.py").read_text("utf-8")
    assert [name for name in EVALUATION if name in source.split('"""', 2)[2]] == []
    assert [path.name for path in _trainer().TRAINING] == list(TRAINING)


def test_shipped_weights_come_from_the_training_files() -> None:
    """A fresh fit on voc_train + voc_dev gives the shipped weights (scikit-learn, lbfgs:
    deterministic; a small tolerance for another BLAS)."""
    pytest.importorskip("sklearn")
    trainer = _trainer()
    texts, labels = trainer.read_training()
    fresh = trainer.fit(*trainer.featurise(texts), labels)
    shipped = json.loads(
        (ROOT / "src/advocado/text/lexicons/persona_model.json").read_text("utf-8")
    )
    assert fresh["classes"] == shipped["classes"]
    assert fresh["dense"].keys() == shipped["dense"].keys()
    for name, weights in fresh["dense"].items():
        assert weights == pytest.approx(shipped["dense"][name], abs=0.02)
    both = fresh["grams"].keys() & shipped["grams"].keys()
    assert len(both) >= 0.99 * len(shipped["grams"])
    drift = max(abs(a - b) for g in both
                for a, b in zip(fresh["grams"][g], shipped["grams"][g], strict=True))  # fmt: skip
    assert drift < 0.02


def test_training_data_is_learned() -> None:
    rows = _rows("voc_train.csv")
    expected = [row["persona"] for row in rows]
    predicted = [analyze(row["text"]).persona for row in rows]
    assert evaluate(expected, predicted).macro_f1 >= 0.98


def test_model_beats_the_rules_alone_on_unseen_sets() -> None:
    for name in ("voc_eval.csv", "voc_holdout.csv"):
        rows = _rows(name)
        expected = [row["persona"] for row in rows]
        learned = evaluate(expected, [analyze(row["text"]).persona for row in rows])
        alone = evaluate(expected, [analyze(row["text"], learned=False).persona for row in rows])
        assert learned.macro_f1 >= alone.macro_f1, name


def test_ngrams_cover_every_position_and_size() -> None:
    text = gram_text(rules("ROI很高"))
    assert text == "\x02roi很高\x03"
    found = [list(sized) for sized in grams(text)]
    assert [len(sized) for sized in found] == [7, 6, 5]
    assert found[2][0] == "\x02ro" and found[1][-1] == "高\x03"


def test_digits_fold_and_ignore_terms_are_blanked() -> None:
    assert gram_text(rules("省了30%")) == "\x02省了00%\x03"
    # 手冲 (pour-over) is a shipped ignore term: neither vocabulary nor n-gram evidence
    assert gram_text(rules("手冲好喝")) == "\x02  好喝\x03"
    silenced = lexicon_for((BrandTerm("love bank", "ignore", 1.0),))
    assert gram_text(rules("Love Bank app", silenced)) == "\x02          app\x03"


@pytest.mark.parametrize("text", ["手冲咖啡很好喝", "手沖咖啡很好喝", "手冲壶做工不错，出水稳定"])
def test_pour_over_is_not_a_feeling(text: str) -> None:
    analysis = analyze(text)
    assert analysis.persona != "emotional"
    assert not any("冲" in item or "沖" in item for item in analysis.evidence)


def test_chong_as_slang_is_still_a_feeling() -> None:
    assert analyze("冲冲冲，姐妹们").persona == "emotional"
    assert "冲冲冲" in analyze("冲冲冲，姐妹们").evidence


@pytest.mark.parametrize(
    ("text", "persona"),
    [
        ("看到包裹那一刻眼泪都要出来了", "emotional"),
        ("It just makes me smile every morning", "emotional"),
        ("呵呵，真是“贴心”的服务", "emotional"),  # sarcasm
        ("Pricing is transparent, but onboarding took 3 weeks", "rational"),
        ("Hardly reliable", "rational"),
        ("還沒用，先觀察", "neutral"),
        ("no comment", "neutral"),
    ],
)
def test_learned_persona(text: str, persona: str) -> None:
    assert analyze(text).persona == persona


def test_evidence_is_quoted_whole_words_and_trimmed() -> None:
    for row in _rows("voc_train.csv")[::7]:
        text = row["text"]
        analysis = analyze(text)
        assert 0.0 <= analysis.confidence < 1.0
        assert analysis.persona == "neutral" or analysis.evidence, text  # a label says why
        for item in analysis.evidence:
            assert item in text, (text, item)
            assert item == item.strip()
    evidence = analyze("Pricing is transparent, but onboarding took 3 weeks").evidence
    assert "Pricing is transparent" in evidence  # words a space apart: one quote
    assert all(not item.startswith(("，", ",")) for item in analyze("系统稳定，功能全面").evidence)


def test_neutral_has_no_evidence() -> None:
    assert analyze("还可以吧").evidence == []


def test_brand_word_is_enough_on_its_own_and_weighs_in_a_sentence() -> None:
    assert analyze("丝滑").persona == "neutral"
    emotional = lexicon_for((BrandTerm("丝滑", "emotional", 1.0),))
    assert analyze("丝滑", emotional).persona == "emotional"
    assert analyze("系统稳定，丝滑", emotional).persona == "emotional"
    assert "丝滑" in analyze("系统稳定，丝滑", emotional).evidence
    rational = lexicon_for((BrandTerm("丝滑", "rational", 1.0),))
    assert analyze("丝滑", rational).persona == "rational"
    # a light brand word (weight < 1) only leans: a generic verdict stays neutral
    light = lexicon_for((BrandTerm("丝滑", "emotional", 0.1),))
    assert analyze("还行", light).persona == "neutral"


def test_rules_alone_are_still_available() -> None:
    read = rules("系统稳定，功能全面，ROI高")
    assert read.persona == "rational"
    assert decide(read)[0] == "rational"
    assert analyze("ok", learned=False).persona == "neutral"


def test_model_file_is_complete() -> None:
    weights = model()
    assert len(weights.intercept) == 3
    assert weights.temperature > 0
    assert "lex:emotional" in weights.dense and "rules:neutral" in weights.dense
    assert len(weights.grams) > 1000
