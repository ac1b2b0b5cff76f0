"""Comment analysis end to end: on import and on update, brand words over the API and from a
file, and the `advocado voc` batch contract as a script sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from advocado.domain.records import ResponseRecord
from advocado.services import records
from advocado.services.apikeys import create_api_key
from advocado.services.lexicon import add_terms, brand_lexicon, remove_term
from advocado.store.db import unit_of_work
from advocado.store.models import Response
from advocado.text import BrandTerm, analyze

API = "/api/v1"
KEYS = ["id", "language", "sentiment", "persona", "confidence", "evidence"]


def response(external_id: str, comment: str | None, score: int = 10) -> ResponseRecord:
    return ResponseRecord(
        external_id=external_id, customer_external_id=None, score=score, comment=comment,
        survey="nps", channel="email", submitted_at=datetime(2026, 3, 1, tzinfo=UTC),
    )  # fmt: skip


def save(engine: Engine, *items: ResponseRecord) -> list[records.Saved]:
    with unit_of_work(engine) as session:
        return records.save_responses(session, list(items))


def stored(engine: Engine, external_id: str) -> Response:
    with unit_of_work(engine) as session:
        row = session.scalar(select(Response).where(Response.external_id == external_id))
        assert row is not None
        session.expunge(row)
        return row


def test_import_classifies_comments(engine: Engine, tmp_path: Path, advocado: Any) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(
        "external_id,score,comment,submitted_at\n"
        "a,10,爱了爱了，太惊喜了！,2026-03-01T10:00:00Z\n"
        "b,9,系統穩定，出貨很快,2026-03-01T10:00:00Z\n"
        "c,8,还行,2026-03-01T10:00:00Z\n"
        "d,7,,2026-03-01T10:00:00Z\n",
        encoding="utf-8",
    )
    result = advocado("import", "responses", str(path), cwd=tmp_path,
                      database_url=engine.url.render_as_string(hide_password=False))  # fmt: skip
    assert result.returncode == 0, result.stderr
    a, b, c, d = (stored(engine, key) for key in "abcd")
    assert (a.persona, a.language) == ("emotional", "zh-Hans")
    assert "爱了" in (a.evidence or []) and a.sentiment and a.sentiment > 0
    assert (b.persona, b.language) == ("rational", "zh-Hant")
    assert "穩定" in (b.evidence or [])
    assert c.persona == "neutral" and c.analyzed_at is not None
    assert d.persona is None and d.analyzed_at is None  # no comment, nothing to say


def test_comment_change_reclassifies_and_unchanged_does_not(engine: Engine) -> None:
    save(engine, response("r1", "ok"))
    first = stored(engine, "r1")
    assert first.persona == "neutral"

    # The same comment again (score changed): the analysis is kept, not redone.
    [again] = save(engine, response("r1", "ok", score=9))
    assert again.outcome == records.Outcome.UPDATED
    assert stored(engine, "r1").analyzed_at == first.analyzed_at

    [unchanged] = save(engine, response("r1", "ok", score=9))
    assert unchanged.outcome == records.Outcome.UNCHANGED

    # The comment arrives later in an update (a survey's comment often does): re-classified.
    [updated] = save(engine, response("r1", "Reliable and fast delivery", score=9))
    assert updated.outcome == records.Outcome.UPDATED
    row = stored(engine, "r1")
    assert row.persona == "rational"
    quoted = " ".join(row.evidence)
    assert "Reliable" in quoted and "delivery" in quoted
    assert all(item in "Reliable and fast delivery" for item in row.evidence)
    assert row.analyzed_at is not None and row.analyzed_at >= first.analyzed_at


def test_unchanged_reimport_does_no_classification(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(engine, response("r1", "爱了"), response("r2", "系统稳定"))
    calls: list[str] = []
    monkeypatch.setattr(records, "analyze_cached", lambda text, lexicon: calls.append(text))
    outcomes = save(engine, response("r1", "爱了"), response("r2", "系统稳定"))
    assert [o.outcome for o in outcomes] == [records.Outcome.UNCHANGED] * 2
    assert calls == []


def test_brand_words_apply_to_new_comments(engine: Engine) -> None:
    save(engine, response("before", "丝滑"))
    assert stored(engine, "before").persona == "neutral"
    with unit_of_work(engine) as session:
        add_terms(session, [BrandTerm("丝滑", "emotional", 1.5)])
    save(engine, response("after", "丝滑"))
    assert stored(engine, "after").persona == "emotional"
    assert stored(engine, "after").evidence == ["丝滑"]


def test_environment_lexicon_file(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "brand.csv"
    path.write_text("term,persona,weight\nsnappy,rational,1.5\n", encoding="utf-8")
    monkeypatch.setenv("ADVOCADO_LEXICON", str(path))
    with unit_of_work(engine) as session:
        lexicon = brand_lexicon(session)
    assert analyze("so snappy", lexicon).persona == "rational"


@pytest.fixture
def auth(engine: Engine) -> Callable[[list[str]], dict[str, str]]:
    def make(scopes: list[str]) -> dict[str, str]:
        with unit_of_work(engine) as session:
            _, token = create_api_key(session, name="brand", scopes=scopes)
        return {"Authorization": f"Bearer {token}"}

    return make


def test_lexicon_api(client: TestClient, engine: Engine, auth: Any) -> None:
    writer, reader = auth(["read", "write"]), auth(["read"])
    assert client.get(f"{API}/lexicon", headers=reader).json() == {"items": []}

    created = client.post(f"{API}/lexicon", headers=writer,
                          json={"term": "丝滑", "persona": "emotional", "weight": 1.5})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json() == {"term": "丝滑", "persona": "emotional", "weight": 1.5}
    # Moving a word to the other side replaces it: one meaning per word.
    client.post(f"{API}/lexicon", headers=writer, json={"term": "丝滑", "persona": "rational"})
    items = client.get(f"{API}/lexicon", headers=reader).json()["items"]
    assert items == [{"term": "丝滑", "persona": "rational", "weight": 1.0}]

    save(engine, response("r1", "丝滑"))
    assert stored(engine, "r1").persona == "rational"

    bad = client.post(f"{API}/lexicon", headers=writer, json={"term": "x", "persona": "happy"})
    assert bad.status_code == 422
    assert "persona" in bad.text
    assert client.post(f"{API}/lexicon", headers=reader,
                       json={"term": "y", "persona": "emotional"}).status_code == 403  # fmt: skip
    assert client.delete(f"{API}/lexicon/丝滑", headers=reader).status_code == 403
    assert client.delete(f"{API}/lexicon/丝滑", headers=writer).status_code == 204
    assert stored(engine, "r1").persona == "neutral"  # re-classified with the word removed
    assert client.delete(f"{API}/lexicon/丝滑", headers=writer).status_code == 404
    assert client.get(f"{API}/lexicon", headers=reader).json() == {"items": []}
    assert client.get(f"{API}/lexicon").status_code == 401


def test_lexicon_import_command(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "brand.tsv"
    path.write_text("term\tpersona\tweight\n丝滑\temotional\t1.5\nsnappy\trational\t1\n",
                    encoding="utf-8")  # fmt: skip
    result = advocado("voc", "lexicon", "import", str(path), cwd=tmp_path,
                      database_url=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 brand words" in result.stdout
    listed = advocado("voc", "lexicon", "list", cwd=tmp_path, database_url=database_url)
    assert listed.stdout.splitlines() == ["丝滑\temotional\t1.5", "snappy\trational\t1"]
    # classify reads the database's brand words
    comments = tmp_path / "c.csv"
    comments.write_text("id,text\n1,丝滑\n", encoding="utf-8")
    out = advocado("voc", "classify", str(comments), cwd=tmp_path, database_url=database_url)
    assert json.loads(out.stdout)["persona"] == "emotional"
    bad = tmp_path / "bad.csv"
    bad.write_text("term,persona\n丝滑,happy\n", encoding="utf-8")
    refused = advocado("voc", "lexicon", "import", str(bad), cwd=tmp_path,
                       database_url=database_url)  # fmt: skip
    assert refused.returncode == 2 and "line 2" in refused.stderr


def test_classify_csv_contract(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "comments.csv"
    path.write_text(
        'id,text\n7,"系统稳定，功能全面，ROI高"\nb2,爱了爱了😍\nx,还行\n9,"Hardly reliable"\n',
        encoding="utf-8-sig",
    )
    result = advocado("voc", "classify", str(path), cwd=tmp_path, database_url=database_url)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(line) for line in lines] == [KEYS] * 4
    assert [line["id"] for line in lines] == ["7", "b2", "x", "9"]
    assert [line["persona"] for line in lines] == ["rational", "emotional", "neutral", "rational"]
    assert lines[0]["language"] == "zh-Hans" and "稳定" in lines[0]["evidence"]
    assert lines[3]["sentiment"] < 0
    for line in lines:
        assert isinstance(line["sentiment"], float) and isinstance(line["confidence"], float)


def test_classify_jsonl_and_bad_lines(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "comments.jsonl"
    path.write_text(
        '{"id": 1, "text": "Love it!"}\n{not json\n{"id": 3}\n{"id": "four", "text": "出貨很快"}\n',
        encoding="utf-8",
    )
    result = advocado("voc", "classify", str(path), cwd=tmp_path, database_url=database_url)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4  # one per input line, in order, bad ones in their place
    assert list(lines[0]) == KEYS and lines[0]["id"] == 1 and lines[0]["persona"] == "emotional"
    assert lines[1] == {"id": None, "error": "line 2: not valid JSON (Expecting property name "
                        "enclosed in double quotes)"}  # fmt: skip
    assert lines[2] == {"id": 3, "error": "line 3: no text"}
    assert lines[3]["id"] == "four" and lines[3]["language"] == "zh-Hant"
    assert "line 2" in result.stderr and "line 3" in result.stderr


def test_classify_csv_without_text_column(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "comments.csv"
    path.write_text("id,comment\n1,ok\n", encoding="utf-8")
    result = advocado("voc", "classify", str(path), cwd=tmp_path, database_url=database_url)
    assert result.returncode == 2
    assert "id and text" in result.stderr


def test_evaluate_command(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "labelled.csv"
    path.write_text("id,text,persona\n1,爱了,emotional\n2,系统稳定,rational\n3,ok,emotional\n",
                    encoding="utf-8")  # fmt: skip
    result = advocado("voc", "evaluate", str(path), "--json", cwd=tmp_path,
                      database_url=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["accuracy"] == round(2 / 3, 4)
    assert figures["confusion"]["emotional"] == {"emotional": 1, "rational": 0, "neutral": 1}
    text = advocado("voc", "evaluate", str(path), cwd=tmp_path, database_url=database_url)
    assert "macro-F1" in text.stdout and "accuracy   0.6667" in text.stdout


def test_reclassify_applies_brand_words_to_stored_comments(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advocado.services.voc import reclassify_responses

    save(engine, response("a", "丝滑"), response("b", "还行"), response("c", "爱了"),
         response("d", None))  # fmt: skip
    assert stored(engine, "a").persona == "neutral"
    # Words from the ADVOCADO_LEXICON file change outside any transaction: `voc reclassify`.
    path = tmp_path / "brand.csv"
    path.write_text("term,persona,weight\n丝滑,emotional,1.5\n", encoding="utf-8")
    monkeypatch.setenv("ADVOCADO_LEXICON", str(path))
    done = reclassify_responses(engine, batch_size=2)
    assert (done.examined, done.changed, done.batches) == (3, 1, 2)
    row = stored(engine, "a")
    assert row.persona == "emotional" and row.evidence == ["丝滑"]
    assert stored(engine, "d").persona is None  # no comment, nothing to say
    again = reclassify_responses(engine)
    assert (again.examined, again.changed) == (3, 0)


def test_reclassify_command(tmp_path: Path, database_url: str, advocado: Any) -> None:
    path = tmp_path / "responses.csv"
    path.write_text("external_id,score,comment,submitted_at\n"
                    "a,10,丝滑,2026-03-01T10:00:00Z\n", encoding="utf-8")  # fmt: skip
    assert advocado("import", "responses", str(path), cwd=tmp_path,
                    database_url=database_url).returncode == 0  # fmt: skip
    assert advocado("voc", "lexicon", "add", "丝滑", "--persona", "rational", cwd=tmp_path,
                    database_url=database_url).returncode == 0  # fmt: skip
    result = advocado("voc", "reclassify", "--batch-size", "10", cwd=tmp_path,
                      database_url=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # `lexicon add` already re-classified the stored comment that contains the word
    assert "1 comments analysed again in 1 batches, 0 changed" in result.stdout


def test_brand_word_changes_reclassify_the_stored_comments_they_affect(engine: Engine) -> None:
    save(engine, response("a", "丝滑"), response("b", "用起來很絲滑"), response("c", "还行"),
         response("d", None), response("e", "ROI很高"))  # fmt: skip
    before = {key: stored(engine, key) for key in "abce"}
    assert before["a"].persona == "neutral"
    with unit_of_work(engine) as session:
        add_terms(session, [BrandTerm("丝滑", "emotional", 1.5)])
    assert stored(engine, "a").persona == "emotional" and stored(engine, "a").evidence == ["丝滑"]
    assert stored(engine, "b").persona == "emotional"  # traditional spelling, same word
    assert "絲滑" in stored(engine, "b").evidence
    for key in "ce":  # comments without the word are not touched
        assert stored(engine, key).analyzed_at == before[key].analyzed_at
    assert stored(engine, "d").persona is None

    with unit_of_work(engine) as session:
        add_terms(session, [BrandTerm("丝滑", "rational", 1.0)])  # moved to the other side
    assert stored(engine, "a").persona == "rational"
    with unit_of_work(engine) as session:
        assert remove_term(session, term="丝滑")
    assert stored(engine, "a").persona == before["a"].persona == "neutral"
    assert stored(engine, "a").evidence == before["a"].evidence


def test_brand_word_and_its_reclassification_commit_together(engine: Engine) -> None:
    save(engine, response("a", "丝滑"))
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        add_terms(session, [BrandTerm("丝滑", "emotional", 1.5)])
        raise RuntimeError("crash before commit")
    assert stored(engine, "a").persona == "neutral"
    with unit_of_work(engine) as session:
        assert "丝滑" not in brand_lexicon(session).entries  # the word is not kept either
