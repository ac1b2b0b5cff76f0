"""CSV import against the real database (SQLite or PostgreSQL, see conftest)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from advocado.services.importing import ImportError_, ImportOptions, Kind, import_file
from advocado.services.nps import nps_figures
from advocado.store.db import unit_of_work
from advocado.store.models import Customer, Order, Response

CUSTOMERS = """external_id,name,email,phone,locale,timezone,marketing_consent,tags,vip_level
c1,张三,zhang@example.com,+86 138 0013 8000,zh-CN,Asia/Shanghai,yes,vip;早鸟,gold
c2,陳小美,mei@example.tw,,zh-TW,Asia/Taipei,no,,
c3,Ann Lee,ann@example.com,,en,Europe/London,1,beta,silver
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_customers_import_with_canonical_headers(engine, tmp_path: Path) -> None:
    summary = import_file(engine, Kind.CUSTOMERS, write(tmp_path / "c.csv", CUSTOMERS))
    assert (summary.rows, summary.created, summary.rejected) == (3, 3, 0)
    with unit_of_work(engine) as session:
        zhang = session.scalars(select(Customer).where(Customer.external_id == "c1")).one()
        mei = session.scalars(select(Customer).where(Customer.external_id == "c2")).one()
    assert zhang.name == "张三" and zhang.locale == "zh-CN" and zhang.phone == "+8613800138000"
    assert zhang.tags == ["vip", "早鸟"]
    assert zhang.attributes == {"vip_level": "gold"}  # unknown columns are kept, not lost
    assert zhang.marketing_consent and zhang.consent_at is not None
    assert zhang.consent_source == "import"
    assert not mei.marketing_consent and mei.consent_at is None


def test_reimport_creates_nothing_twice_and_changes_update(engine, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", CUSTOMERS)
    import_file(engine, Kind.CUSTOMERS, path)
    again = import_file(engine, Kind.CUSTOMERS, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    write(path, CUSTOMERS.replace("Ann Lee", "Ann Lee-Smith"))
    changed = import_file(engine, Kind.CUSTOMERS, path)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)
    assert count(engine, Customer) == 3


def test_gb18030_file_with_a_bom_less_header(engine, tmp_path: Path) -> None:
    path = write(tmp_path / "gbk.csv", CUSTOMERS, encoding="gb18030")
    summary = import_file(engine, Kind.CUSTOMERS, path)
    assert summary.encoding == "gb18030" and summary.created == 3
    with unit_of_work(engine) as session:
        assert session.scalar(select(Customer.name).where(Customer.external_id == "c2")) == "陳小美"


def test_invalid_bytes_are_replaced_not_fatal(engine, tmp_path: Path) -> None:
    body = "external_id,score,comment,submitted_at\n" + "".join(
        f"r{i},9,很好用 great,2026-01-0{1 + i % 9}T10:00:00Z\n" for i in range(50)
    )
    raw = body.encode().replace(b"great,2026-01-01", b"gr\xffeat,2026-01-01", 1)
    path = tmp_path / "r.csv"
    path.write_bytes(raw)
    summary = import_file(engine, Kind.RESPONSES, path)
    assert summary.created == 50 and summary.rejected == 0
    with unit_of_work(engine) as session:
        assert session.scalar(select(Response.comment).where(Response.external_id == "r0")) == (
            "很好用 gr\ufffdeat"
        )


def test_bad_rows_are_reported_with_line_field_reason_and_written_to_rejects(
    engine, tmp_path: Path
) -> None:
    import_file(engine, Kind.CUSTOMERS, write(tmp_path / "c.csv", CUSTOMERS))
    orders = write(
        tmp_path / "orders.csv",
        "external_id,customer_external_id,amount,currency,status,placed_at\n"
        "o1,c1,199.00,CNY,paid,2026-03-01T10:00:00+08:00\n"
        "o2,c1,abc,CNY,paid,2026-03-02T10:00:00+08:00\n"
        "o3,nobody,10,CNY,paid,2026-03-02T10:00:00+08:00\n"
        'o4,c2,"1,299.50",TWD,,2026-03-03\n'
        "o5,c3,20,USD,lost,2026-03-03\n",
    )
    rejects = tmp_path / "orders.rejects.csv"
    summary = import_file(engine, Kind.ORDERS, orders, rejects_path=rejects)
    assert (summary.created, summary.rejected) == (2, 3)
    reported = {(r.line, r.field) for r in summary.first_rejects}
    assert reported == {(3, "amount"), (4, "customer_external_id"), (6, "status")}
    with rejects.open(encoding="utf-8-sig") as file:
        rows = list(csv.DictReader(file))
    assert [(row["line"], row["field"]) for row in rows] == [
        ("3", "amount"), ("6", "status"), ("4", "customer_external_id"),
    ]  # fmt: skip
    assert rows[0]["external_id"] == "o2" and "'abc' is not an amount" in rows[0]["reason"]
    with unit_of_work(engine) as session:
        amounts = dict(session.execute(select(Order.external_id, Order.amount)).all())
    assert amounts == {"o1": 19900, "o4": 129950}


def test_strict_import_with_one_bad_row_writes_nothing(engine, tmp_path: Path) -> None:
    lines = ["external_id,score,submitted_at"]
    lines += [f"r{i},{i % 11},2026-02-01T00:00:00Z" for i in range(4500)]
    lines.insert(4000, "bad,12,2026-02-01T00:00:00Z")  # past the first batches already saved
    path = write(tmp_path / "r.csv", "\n".join(lines) + "\n")
    summary = import_file(engine, Kind.RESPONSES, path, ImportOptions(strict=True))
    assert summary.aborted and summary.rejected == 1 and summary.created == 0
    assert summary.first_rejects[0].line == 4001 and summary.first_rejects[0].field == "score"
    assert count(engine, Response) == 0
    relaxed = import_file(engine, Kind.RESPONSES, path)
    assert relaxed.created == 4500 and relaxed.rejected == 1


def test_a_crash_mid_import_leaves_the_database_as_it_was(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["external_id,score,submitted_at"]
    lines += [f"r{i},9,2026-02-01T00:00:00Z" for i in range(5000)]
    path = write(tmp_path / "r.csv", "\n".join(lines) + "\n")
    from advocado.services import importing

    real = importing._SAVERS[Kind.RESPONSES]
    calls = {"n": 0}

    def crash_on_third_batch(session, records, **options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(session, records, **options)

    monkeypatch.setitem(importing._SAVERS, Kind.RESPONSES, crash_on_third_batch)
    with pytest.raises(RuntimeError):
        import_file(engine, Kind.RESPONSES, path)
    assert count(engine, Response) == 0
    monkeypatch.setitem(importing._SAVERS, Kind.RESPONSES, real)
    assert import_file(engine, Kind.RESPONSES, path).created == 5000


def test_the_comment_arriving_later_updates_the_same_response(engine, tmp_path: Path) -> None:
    import_file(engine, Kind.CUSTOMERS, write(tmp_path / "c.csv", CUSTOMERS))
    header = "customer_external_id,score,comment,survey,submitted_at\n"
    first = write(tmp_path / "r1.csv", header + "c1,10,,onboarding,2026-04-01T09:00:00+08:00\n")
    later = write(
        tmp_path / "r2.csv",
        header + "c1,10,系统稳定，ROI很高,onboarding,2026-04-01T09:00:00+08:00\n",
    )
    assert import_file(engine, Kind.RESPONSES, first).created == 1
    summary = import_file(engine, Kind.RESPONSES, later)
    assert (summary.created, summary.updated) == (0, 1)
    with unit_of_work(engine) as session:
        rows = session.execute(select(Response.comment, Response.customer_id)).all()
    assert len(rows) == 1 and rows[0].comment == "系统稳定，ROI很高" and rows[0].customer_id


def test_mapping_errors_are_clear_before_anything_is_read(engine, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "id,rating,when\n1,9,2026-01-01\n")
    with pytest.raises(ImportError_, match="required column.*score, submitted_at.*--map"):
        import_file(engine, Kind.RESPONSES, path)
    with pytest.raises(ImportError_, match="unknown field.*rating_value"):
        import_file(engine, Kind.RESPONSES, path, ImportOptions(mapping={"rating_value": "rating"}))
    with pytest.raises(ImportError_, match="no column 'stars'"):
        import_file(engine, Kind.RESPONSES, path, ImportOptions(mapping={"score": "stars"}))
    ok = ImportOptions(mapping={"score": "rating", "submitted_at": "when", "external_id": "id"})
    assert import_file(engine, Kind.RESPONSES, path, ok).created == 1


def test_real_nps_verbatims_give_the_published_figures(engine, shared_data: Path, tmp_path) -> None:
    options = ImportOptions(
        mapping={"score": "NPS_SCORE", "comment": "text", "submitted_at": "CUSTOMER_RESPONSE_DATE",
                 "survey": "SURVEY_SUB_TYPE"},
        date_format="%d/%m/%Y %H:%M",
    )  # fmt: skip
    path = shared_data / "nps_verbatims_textsummary" / "text_data.csv"
    rejects = tmp_path / "rejects.csv"
    summary = import_file(engine, Kind.RESPONSES, path, options, rejects_path=rejects)
    assert (summary.created, summary.rejected) == (2353, 32)
    assert {r.field for r in summary.first_rejects} == {"score"}
    with unit_of_work(engine) as session:
        figures = nps_figures(session)
    assert (figures.promoters, figures.passives, figures.detractors) == (690, 392, 1271)
    assert round(figures.nps or 0, 1) == -24.7
    again = import_file(engine, Kind.RESPONSES, path, options, rejects_path=rejects)
    assert (again.created, again.unchanged) == (0, 2353)
    assert count(engine, Response) == 2353
