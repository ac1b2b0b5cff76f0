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
    },
}

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
