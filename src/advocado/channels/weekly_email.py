"""The weekly summary email's words and layout (text + HTML) in en, zh-CN and zh-TW. Pure:
takes the figures services/weekly.py gathered, returns (subject, text, html)."""

from __future__ import annotations

from html import escape
from typing import Any

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Advocado weekly summary {week} ({start} – {end})",
        "intro": "Last week ({week}, {start} – {end}) against the week before ({previous}).",
        "figure": "Figure",
        "this_week": "Last week",
        "week_before": "Week before",
        "change": "Change",
        "nps": "NPS",
        "responses": "Responses",
        "promoters": "Promoters (9-10)",
        "passives": "Passives (7-8)",
        "detractors": "Detractors (0-6)",
        "new_promoters": "New promoters by persona",
        "emotional": "emotional",
        "rational": "rational",
        "neutral": "neutral",
        "funnel": "Referral funnel",
        "clicks": "Clicks",
        "unique_clicks": "Unique clicks",
        "signups": "Sign-ups",
        "qualified": "Qualified",
        "rewarded": "Rewarded",
        "rejected": "Rejected",
        "in_review": "In review",
        "money": "Revenue and cost ({currency})",
        "revenue": "Referred revenue",
        "rewards_cost": "Reward cost",
        "roi": "ROI",
        "plan": "Plan vs actual",
        "target": "target",
        "actual": "actual",
        "status_on_track": "on track",
        "status_not_started": "not started",
        "status_no_target": "no target",
        "status_behind": "behind",
        "status_done": "done",
        "no_plan": "No plan is active.",
        "dashboard": "Open the dashboard",
        "why": "You receive this because the weekly summary is on for {email} in Advocado "
        "(console: Users). It is an internal report, not marketing.",
    },
    "zh-CN": {
        "subject": "Advocado 每周摘要 {week}（{start} – {end}）",
        "intro": "上周（{week}，{start} – {end}）与前一周（{previous}）对比。",
        "figure": "指标",
        "this_week": "上周",
        "week_before": "前一周",
        "change": "变化",
        "nps": "NPS",
        "responses": "回复数",
        "promoters": "推荐者（9-10）",
        "passives": "被动者（7-8）",
        "detractors": "贬损者（0-6）",
        "new_promoters": "新增推荐者（按画像）",
        "emotional": "情感型",
        "rational": "理性型",
        "neutral": "中性",
        "funnel": "推荐漏斗",
        "clicks": "点击",
        "unique_clicks": "独立点击",
        "signups": "注册",
        "qualified": "合格",
        "rewarded": "已奖励",
        "rejected": "已拒绝",
        "in_review": "审核中",
        "money": "收入与成本（{currency}）",
        "revenue": "推荐带来的收入",
        "rewards_cost": "奖励成本",
        "roi": "投资回报率",
        "plan": "计划与实际",
        "target": "目标",
        "actual": "实际",
        "status_on_track": "按计划",
        "status_not_started": "未开始",
        "status_no_target": "无目标",
        "status_behind": "落后",
        "status_done": "已完成",
        "no_plan": "当前没有进行中的计划。",
        "dashboard": "打开仪表盘",
        "why": "您收到此邮件是因为 {email} 在 Advocado 中开启了每周摘要（控制台：用户）。"
        "这是内部报告，不是营销邮件。",
    },
    "zh-TW": {
        "subject": "Advocado 每週摘要 {week}（{start} – {end}）",
        "intro": "上週（{week}，{start} – {end}）與前一週（{previous}）對比。",
        "figure": "指標",
        "this_week": "上週",
        "week_before": "前一週",
        "change": "變化",
        "nps": "NPS",
        "responses": "回覆數",
        "promoters": "推薦者（9-10）",
        "passives": "被動者（7-8）",
        "detractors": "批評者（0-6）",
        "new_promoters": "新增推薦者（依輪廓）",
        "emotional": "情感型",
        "rational": "理性型",
        "neutral": "中性",
        "funnel": "推薦漏斗",
        "clicks": "點擊",
        "unique_clicks": "不重複點擊",
        "signups": "註冊",
        "qualified": "合格",
        "rewarded": "已獎勵",
        "rejected": "已拒絕",
        "in_review": "審核中",
        "money": "營收與成本（{currency}）",
        "revenue": "推薦帶來的營收",
        "rewards_cost": "獎勵成本",
        "roi": "投資報酬率",
        "plan": "計畫與實際",
        "target": "目標",
        "actual": "實際",
        "status_on_track": "按計畫",
        "status_not_started": "未開始",
        "status_no_target": "無目標",
        "status_behind": "落後",
        "status_done": "已完成",
        "no_plan": "目前沒有進行中的計畫。",
        "dashboard": "開啟儀表板",
        "why": "您收到此郵件是因為 {email} 在 Advocado 中開啟了每週摘要（主控台：使用者）。"
        "這是內部報告，不是行銷郵件。",
    },
}
LOCALES = tuple(WORDS)


def _number(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return f"{int(value) / 100:,.2f}"
    if kind == "ratio":
        return f"{100 * float(value):.1f}%"
    if kind == "nps":
        return f"{float(value):+.1f}"
    return f"{int(value):,}"


def _change(now: Any, before: Any, kind: str) -> str:
    if now is None or before is None:
        return "—"
    delta = float(now) - float(before)
    if kind == "money":
        return f"{delta / 100:+,.2f}"
    if kind == "ratio":
        return f"{100 * delta:+.1f} pt"
    if kind == "nps":
        return f"{delta:+.1f}"
    return f"{int(delta):+,}"


def sections(figures: dict[str, Any], locale: str) -> list[tuple[str, list[tuple[str, ...]]]]:
    """(title, rows of label / last week / week before / change) of every section."""
    w = WORDS.get(locale, WORDS["en"])
    now, before = figures["current"], figures["previous"]

    def rows(pairs: list[tuple[str, str, str]]) -> list[tuple[str, ...]]:
        """(group, figure, kind) -> label, last week, the week before, change."""
        return [
            (w[name], _number(now[group][name], kind), _number(before[group][name], kind),
             _change(now[group][name], before[group][name], kind))
            for group, name, kind in pairs
        ]  # fmt: skip

    nps = rows([("nps", "nps", "nps"), ("nps", "responses", "count"),
                ("nps", "promoters", "count"), ("nps", "passives", "count"),
                ("nps", "detractors", "count")])  # fmt: skip
    personas = rows([("personas", p, "count") for p in ("emotional", "rational", "neutral")])
    funnel = rows([("funnel", s, "count") for s in ("clicks", "unique_clicks", "signups",
                   "qualified", "rewarded", "rejected", "in_review")])  # fmt: skip
    money = rows([("money", "revenue", "money"), ("money", "rewards_cost", "money"),
                  ("money", "roi", "ratio")])  # fmt: skip
    return [
        (w["nps"], nps),
        (w["new_promoters"], personas),
        (w["funnel"], funnel),
        (w["money"].format(currency=now["money"]["currency"]), money),
    ]


def _plan_lines(figures: dict[str, Any], locale: str) -> list[str]:
    w = WORDS.get(locale, WORDS["en"])
    lines = []
    for row in figures["plan"]:
        status = w.get(f"status_{row.get('status')}", str(row.get("status") or ""))
        done = row.get("percent_done")
        percent = "—" if done is None else f"{float(done):.0f}%"
        lines.append(
            f"{row.get('plan')} · {row.get('goal')}: {w['actual']} {row.get('actual')} / "
            f"{w['target']} {row.get('target')} ({percent}) — {status}"
        )
    return lines


def render(
    figures: dict[str, Any], *, locale: str, email: str, dashboard_url: str
) -> tuple[str, str, str]:
    """(subject, text, html) of one user's summary."""
    w = WORDS.get(locale, WORDS["en"])
    dates = {"week": figures["week"], "start": figures["start"], "end": figures["end"],
             "previous": figures["previous_week"]}  # fmt: skip
    subject = w["subject"].format(**dates)
    intro = w["intro"].format(**dates)
    found = sections(figures, locale)
    plan = _plan_lines(figures, locale) or [w["no_plan"]]
    why = w["why"].format(email=email)

    text = [intro, ""]
    head = (w["figure"], w["this_week"], w["week_before"], w["change"])
    for title, rows in found:
        text += [title, " | ".join(head)]
        text += [" | ".join(row) for row in rows]
        text.append("")
    text += [w["plan"], *plan, "", f"{w['dashboard']}: {dashboard_url}", "", why]

    html = [f'<html lang="{escape(locale)}"><body style="font-family:sans-serif">',
            f"<p>{escape(intro)}</p>"]  # fmt: skip
    for title, rows in found:
        html.append(f"<h3>{escape(title)}</h3><table border=\"1\" cellpadding=\"4\" "
                    "style=\"border-collapse:collapse\"><tr>"
                    + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")  # fmt: skip
        for row in rows:
            html.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        html.append("</table>")
    html.append(f"<h3>{escape(w['plan'])}</h3><ul>")
    html += [f"<li>{escape(line)}</li>" for line in plan]
    html.append(f'</ul><p><a href="{escape(dashboard_url)}">{escape(w["dashboard"])}</a></p>')
    html.append(f'<p style="color:#666;font-size:small">{escape(why)}</p></body></html>')
    return subject, "\n".join(text) + "\n", "\n".join(html)
