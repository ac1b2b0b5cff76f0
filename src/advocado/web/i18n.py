"""The console's words in English, 简体中文 and 繁體中文, and which one a request gets."""

from __future__ import annotations

LOCALES = ("en", "zh-CN", "zh-TW")
DEFAULT = "en"
LOCALE_NAMES = {"en": "English", "zh-CN": "简体中文", "zh-TW": "繁體中文"}

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "overview": "Overview",
        "sign_in": "Sign in",
        "sign_in_intro": "Sign in to the Advocado console.",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in as {email}",
        "email": "Email",
        "password": "Password",
        "login_failed": "Wrong email or password.",
        "login_throttled": "Too many failed sign-ins. Try again in {minutes} min.",
        "form_expired": "The form expired. Please try again.",
        "api_docs": "API docs",
        "language": "Language",
        "nps": "NPS",
        "nps_all_time": "NPS, all time",
        "nps_recent": "NPS, last {days} days",
        "no_score": "n/a",
        "promoters": "Promoters",
        "passives": "Passives",
        "detractors": "Detractors",
        "promoter": "Promoter",
        "passive": "Passive",
        "detractor": "Detractor",
        "customers": "Customers",
        "orders": "Orders",
        "responses": "Responses",
        "latest_responses": "Latest responses",
        "time": "Time",
        "customer": "Customer",
        "score": "Score",
        "category": "Category",
        "survey": "Survey",
        "comment": "Comment",
        "anonymous": "anonymous",
        "no_responses": "No responses yet. Import them with `advocado import responses`, "
        "or load the demo brand with `advocado demo`.",
        "times_in_utc": "Times in UTC.",
        # segments, promoters by persona (web/console/segments.py)
        "segments": "Segments",
        "promoters_by_persona": "Promoters by persona",
        "promoters_note": "Customers whose latest NPS answer is 9 or 10, by the persona of "
        "that answer's comment; the words that decided it are highlighted.",
        "no_promoters": "No promoters here yet.",
        "evidence": "Evidence",
        "influence": "Influence",
        "segment_name": "Name",
        "slug": "Slug (URL name)",
        "filters": "Filters",
        "members": "Members",
        "everyone": "everyone",
        "export_csv": "Export CSV",
        "no_segments": "No segments yet: make the first one below.",
        "new_segment": "New segment",
        "preview_count": "{count} customers match these filters.",
        "response_filters": "NPS answer",
        "response_filters_note": "Judged on each customer's latest answer in the survey and "
        "period chosen.",
        "customer_filters": "Customer",
        "any": "any",
        "yes": "yes",
        "no": "no",
        "preview": "Count",
        "save_segment": "Save segment",
        "delete_segment": "Delete segment",
        "no_such_segment": "No such segment.",
        "no_members": "No customer matches this segment now.",
        "next_page": "Next page →",
        "f_nps_category": "NPS category",
        "f_persona": "Persona",
        "f_score_min": "Score from",
        "f_score_max": "Score to",
        "f_survey": "Survey",
        "f_submitted_from": "Answered from",
        "f_submitted_to": "Answered to",
        "f_value_tier": "Value tier",
        "f_lifecycle_stage": "Lifecycle",
        "f_high_influence": "High influence",
        "f_influence_min": "Influence at least",
        "f_consent": "Marketing consent",
        "f_tags_any": "Any of these tags",
        "f_tags_all": "All of these tags",
        "v_promoter": "promoter",
        "v_passive": "passive",
        "v_detractor": "detractor",
        "v_emotional": "emotional",
        "v_rational": "rational",
        "v_neutral": "neutral",
        "v_high_influence": "high influence",
        "v_high": "high",
        "v_mid": "mid",
        "v_low": "low",
        "v_new": "new",
        "v_steady": "steady",
        "v_declining": "declining",
        "v_lapsed": "lapsed",
    },
    "zh-CN": {
        "overview": "概览",
        "sign_in": "登录",
        "sign_in_intro": "登录 Advocado 控制台。",
        "sign_out": "退出登录",
        "signed_in_as": "当前用户 {email}",
        "email": "邮箱",
        "password": "密码",
        "login_failed": "邮箱或密码错误。",
        "login_throttled": "登录失败次数过多，请在 {minutes} 分钟后重试。",
        "form_expired": "表单已过期，请重试。",
        "api_docs": "API 文档",
        "language": "语言",
        "nps": "净推荐值 (NPS)",
        "nps_all_time": "净推荐值（全部时间）",
        "nps_recent": "净推荐值（最近 {days} 天）",
        "no_score": "暂无",
        "promoters": "推荐者",
        "passives": "中立者",
        "detractors": "贬损者",
        "promoter": "推荐者",
        "passive": "中立者",
        "detractor": "贬损者",
        "customers": "客户",
        "orders": "订单",
        "responses": "问卷回复",
        "latest_responses": "最新回复",
        "time": "时间",
        "customer": "客户",
        "score": "评分",
        "category": "类别",
        "survey": "问卷",
        "comment": "评论",
        "anonymous": "匿名",
        "no_responses": "还没有回复。可用 `advocado import responses` 导入，"
        "或用 `advocado demo` 加载演示品牌。",
        "times_in_utc": "时间为 UTC。",
        # segments, promoters by persona (web/console/segments.py)
        "segments": "客户分群",
        "promoters_by_persona": "推荐者画像",
        "promoters_note": "最新一次 NPS 评分为 9-10 分的客户，按该条评论的画像分组；"
        "决定画像的词语已高亮。",
        "no_promoters": "这里还没有推荐者。",
        "evidence": "依据",
        "influence": "影响力",
        "segment_name": "名称",
        "slug": "标识（URL 名称）",
        "filters": "筛选条件",
        "members": "成员",
        "everyone": "全部客户",
        "export_csv": "导出 CSV",
        "no_segments": "还没有分群，请在下方创建。",
        "new_segment": "新建分群",
        "preview_count": "符合这些条件的客户：{count} 位。",
        "response_filters": "NPS 回复",
        "response_filters_note": "按每位客户在所选问卷和时间段内的最新一次回复判断。",
        "customer_filters": "客户",
        "any": "不限",
        "yes": "是",
        "no": "否",
        "preview": "预览人数",
        "save_segment": "保存分群",
        "delete_segment": "删除分群",
        "no_such_segment": "没有这个分群。",
        "no_members": "目前没有符合该分群的客户。",
        "next_page": "下一页 →",
        "f_nps_category": "NPS 类别",
        "f_persona": "画像",
        "f_score_min": "最低分",
        "f_score_max": "最高分",
        "f_survey": "问卷",
        "f_submitted_from": "回复起始日",
        "f_submitted_to": "回复截止日",
        "f_value_tier": "价值层级",
        "f_lifecycle_stage": "生命周期",
        "f_high_influence": "高影响力",
        "f_influence_min": "影响力不低于",
        "f_consent": "营销授权",
        "f_tags_any": "含任一标签",
        "f_tags_all": "含全部标签",
        "v_promoter": "推荐者",
        "v_passive": "中立者",
        "v_detractor": "贬损者",
        "v_emotional": "情感型",
        "v_rational": "理性型",
        "v_neutral": "中性",
        "v_high_influence": "高影响力",
        "v_high": "高价值",
        "v_mid": "中价值",
        "v_low": "低价值",
        "v_new": "新客",
        "v_steady": "稳定",
        "v_declining": "下滑",
        "v_lapsed": "流失",
    },
    "zh-TW": {
        "overview": "總覽",
        "sign_in": "登入",
        "sign_in_intro": "登入 Advocado 控制台。",
        "sign_out": "登出",
        "signed_in_as": "目前使用者 {email}",
        "email": "電子郵件",
        "password": "密碼",
        "login_failed": "電子郵件或密碼錯誤。",
        "login_throttled": "登入失敗次數過多，請在 {minutes} 分鐘後再試。",
        "form_expired": "表單已過期，請再試一次。",
        "api_docs": "API 文件",
        "language": "語言",
        "nps": "淨推薦值 (NPS)",
        "nps_all_time": "淨推薦值（全部期間）",
        "nps_recent": "淨推薦值（最近 {days} 天）",
        "no_score": "暫無",
        "promoters": "推薦者",
        "passives": "中立者",
        "detractors": "貶損者",
        "promoter": "推薦者",
        "passive": "中立者",
        "detractor": "貶損者",
        "customers": "客戶",
        "orders": "訂單",
        "responses": "問卷回覆",
        "latest_responses": "最新回覆",
        "time": "時間",
        "customer": "客戶",
        "score": "評分",
        "category": "類別",
        "survey": "問卷",
        "comment": "評論",
        "anonymous": "匿名",
        "no_responses": "尚無回覆。可用 `advocado import responses` 匯入，"
        "或用 `advocado demo` 載入示範品牌。",
        "times_in_utc": "時間為 UTC。",
        # segments, promoters by persona (web/console/segments.py)
        "segments": "客戶分群",
        "promoters_by_persona": "推薦者畫像",
        "promoters_note": "最新一次 NPS 評分為 9-10 分的客戶，依該則評論的畫像分組；"
        "決定畫像的詞語已標示。",
        "no_promoters": "這裡還沒有推薦者。",
        "evidence": "依據",
        "influence": "影響力",
        "segment_name": "名稱",
        "slug": "識別碼（URL 名稱）",
        "filters": "篩選條件",
        "members": "成員",
        "everyone": "全部客戶",
        "export_csv": "匯出 CSV",
        "no_segments": "尚無分群，請在下方建立。",
        "new_segment": "新增分群",
        "preview_count": "符合這些條件的客戶：{count} 位。",
        "response_filters": "NPS 回覆",
        "response_filters_note": "依每位客戶在所選問卷與期間內的最新一次回覆判斷。",
        "customer_filters": "客戶",
        "any": "不限",
        "yes": "是",
        "no": "否",
        "preview": "預覽人數",
        "save_segment": "儲存分群",
        "delete_segment": "刪除分群",
        "no_such_segment": "沒有這個分群。",
        "no_members": "目前沒有符合此分群的客戶。",
        "next_page": "下一頁 →",
        "f_nps_category": "NPS 類別",
        "f_persona": "畫像",
        "f_score_min": "最低分",
        "f_score_max": "最高分",
        "f_survey": "問卷",
        "f_submitted_from": "回覆起始日",
        "f_submitted_to": "回覆截止日",
        "f_value_tier": "價值層級",
        "f_lifecycle_stage": "生命週期",
        "f_high_influence": "高影響力",
        "f_influence_min": "影響力不低於",
        "f_consent": "行銷同意",
        "f_tags_any": "含任一標籤",
        "f_tags_all": "含全部標籤",
        "v_promoter": "推薦者",
        "v_passive": "中立者",
        "v_detractor": "貶損者",
        "v_emotional": "情感型",
        "v_rational": "理性型",
        "v_neutral": "中性",
        "v_high_influence": "高影響力",
        "v_high": "高價值",
        "v_mid": "中價值",
        "v_low": "低價值",
        "v_new": "新客",
        "v_steady": "穩定",
        "v_declining": "下滑",
        "v_lapsed": "流失",
    },
}

# The dashboard's and the audit log's words live beside it (issue 6), merged in here.
from advocado.web.i18n_dashboard import WORDS as _DASHBOARD_WORDS  # noqa: E402

for _locale, _words in _DASHBOARD_WORDS.items():
    CATALOGUE[_locale].update(_words)

_ALIASES = {
    "en": "en",
    "zh": "zh-CN", "zh-cn": "zh-CN", "zh-sg": "zh-CN", "zh-hans": "zh-CN", "zh-hans-cn": "zh-CN",
    "zh-tw": "zh-TW", "zh-hk": "zh-TW", "zh-mo": "zh-TW", "zh-hant": "zh-TW",
    "zh-hant-tw": "zh-TW", "zh-hant-hk": "zh-TW",
}  # fmt: skip


def known(tag: str | None) -> str | None:
    """The catalogue locale a language tag means, or None."""
    raw = (tag or "").strip().replace("_", "-").lower()
    if not raw:
        return None
    if raw in _ALIASES:
        return _ALIASES[raw]
    if raw.startswith("en-"):
        return "en"
    if raw.startswith("zh-hant"):
        return "zh-TW"
    if raw.startswith("zh-"):
        return "zh-CN"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best catalogue locale in an Accept-Language header, by its q-values."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        found = known(tag)
        if found and quality > 0:
            choices.append((-quality, position, found))
    return min(choices)[2] if choices else None


def negotiate(*, query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """?lang= beats the lang cookie, which beats the browser's Accept-Language."""
    return known(query) or known(cookie) or from_accept_language(accept_language) or DEFAULT


def translate(locale: str, key: str, **values: object) -> str:
    text = CATALOGUE.get(locale, CATALOGUE[DEFAULT]).get(key) or CATALOGUE[DEFAULT][key]
    return text.format(**values) if values else text
