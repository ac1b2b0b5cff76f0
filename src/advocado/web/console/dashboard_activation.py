"""The console's side of the activation figures (services.dashboard_activation): their
ECharts options (each point carries the drill-down it opens) and the words the panel template
uses for the level definitions and skip reasons, in the reader's language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advocado.domain import activation as rules
from advocado.web.i18n import translate

Chart = Callable[[Any, str], dict[str, Any] | None]


def _activation(found: Any, lang: str) -> dict[str, Any]:
    levels = [r["level"] for r in found.rows]
    series = []
    for stage in rules.STAGES:
        data = [
            {"value": r[stage], "drill": {"level": r["level"], "stage": stage}} for r in found.rows
        ]
        series.append({"name": translate(lang, f"c_{stage}"), "type": "bar", "data": data})
    names = [rules.level_name(level, lang) for level in levels]
    return {"tooltip": {"trigger": "axis"}, "legend": {}, "grid": {"containLabel": True},
            "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0}},
            "yAxis": {"type": "value"}, "series": series}  # fmt: skip


def _over_time(found: Any, lang: str, key: str, stages: tuple[str, ...]) -> dict[str, Any]:
    periods = sorted({r["period"] for r in found.rows})
    series = []
    for stage in stages:
        by: dict[str, int] = dict.fromkeys(periods, 0)
        for r in found.rows:
            if key != "site" or r["site"] == "":  # reviews: the all-sites rows
                by[r["period"]] += r[stage] or 0
        series.append({"name": translate(lang, f"c_{stage}"), "type": "bar",
                       "data": [{"value": by[p], "drill": {"period": p, "stage": stage}}
                                for p in periods]})  # fmt: skip
    if key == "site":  # one line per review site: its clicks
        for site in sorted({r["site"] for r in found.rows if r["site"]}):
            by = {r["period"]: r["clicked"] for r in found.rows if r["site"] == site}
            series.append({"name": f"{site} · {translate(lang, 'c_clicked')}", "type": "line",
                           "data": [{"value": by.get(p, 0),
                                     "drill": {"period": p, "site": site, "stage": "clicked"}}
                                    for p in periods]})  # fmt: skip
    return {"tooltip": {"trigger": "axis"}, "legend": {"type": "scroll"},
            "grid": {"containLabel": True}, "xAxis": {"type": "category", "data": periods},
            "yAxis": {"type": "value"}, "series": series}  # fmt: skip


CHARTS: dict[str, Chart] = {
    "activation": _activation,
    "activation_steps": lambda found, lang: None,  # a table: one row per step
    "reviews": lambda found, lang: _over_time(found, lang, "site",
                                              ("asked", "delivered", "clicked")),
    "ugc": lambda found, lang: _over_time(found, lang, "challenge",
                                          ("invitations", "entries", "approved", "featured")),
}  # fmt: skip


def install(env: Any) -> None:
    """The template globals the activation panel uses."""
    env.globals["act_level_name"] = rules.level_name
    env.globals["act_meaning"] = rules.meaning
    env.globals["act_skip_label"] = rules.skip_label
    env.globals["act_skip_note"] = lambda lang: rules.said(rules.SKIP_NOTE, lang)
    env.globals["act_stages"] = rules.STAGES
