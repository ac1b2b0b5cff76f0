"""Net Promoter Score: categories and the score itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class NpsCategory(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


def category(score: int) -> NpsCategory:
    """9-10 promoter, 7-8 passive, 0-6 detractor."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0-10, not {score}")
    if score >= 9:
        return NpsCategory.PROMOTER
    if score >= 7:
        return NpsCategory.PASSIVE
    return NpsCategory.DETRACTOR


@dataclass(frozen=True)
class NpsFigures:
    promoters: int
    passives: int
    detractors: int

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters minus % detractors; None when there is no response to count."""
        if self.responses == 0:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.responses

    def as_dict(self) -> dict[str, float | int | None]:
        figures = asdict(self)
        figures["responses"] = self.responses
        figures["nps"] = None if self.nps is None else round(self.nps, 1)
        return figures

    @classmethod
    def from_score_counts(cls, counts: dict[int, int]) -> NpsFigures:
        def total(low: int, high: int) -> int:
            return sum(n for score, n in counts.items() if low <= score <= high)

        return cls(promoters=total(9, 10), passives=total(7, 8), detractors=total(0, 6))
