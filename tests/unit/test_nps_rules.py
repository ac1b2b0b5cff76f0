import pytest

from advocado.domain.nps import NpsCategory, NpsFigures, category


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0, NpsCategory.DETRACTOR), (6, NpsCategory.DETRACTOR), (7, NpsCategory.PASSIVE),
     (8, NpsCategory.PASSIVE), (9, NpsCategory.PROMOTER), (10, NpsCategory.PROMOTER)],
)  # fmt: skip
def test_category_boundaries(score: int, expected: NpsCategory) -> None:
    assert category(score) is expected


@pytest.mark.parametrize("score", [-1, 11])
def test_category_rejects_scores_outside_0_to_10(score: int) -> None:
    with pytest.raises(ValueError, match="0-10"):
        category(score)


def test_nps_is_percent_promoters_minus_percent_detractors() -> None:
    figures = NpsFigures.from_score_counts({10: 30, 9: 20, 8: 25, 7: 5, 3: 10, 0: 10})
    assert (figures.promoters, figures.passives, figures.detractors) == (50, 30, 20)
    assert figures.responses == 100
    assert figures.nps == pytest.approx(30.0)


def test_nps_of_nothing_is_none_not_zero() -> None:
    figures = NpsFigures.from_score_counts({})
    assert figures.nps is None
    assert figures.as_dict() == {
        "promoters": 0, "passives": 0, "detractors": 0, "responses": 0, "nps": None,
    }  # fmt: skip


def test_as_dict_rounds_nps_to_one_decimal() -> None:
    figures = NpsFigures(promoters=1, passives=1, detractors=1)
    assert figures.as_dict()["nps"] == 0.0
    assert NpsFigures(promoters=2, passives=0, detractors=1).as_dict()["nps"] == 33.3
