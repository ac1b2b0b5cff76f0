"""Words of the manual ledger correction form, the weekly summary settings and CSV links, in
the three locales (merged into web/i18n.CATALOGUE)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "lc_title": "Correct the balance",
        "lc_help": "A new adjusting entry in the ledger (old entries are never edited), in the "
        "audit log with the balance before and after. + adds, - takes; it cannot take the "
        "available balance below zero.",
        "lc_amount": "Amount (points, or minor units of credit)",
        "lc_unit": "Unit",
        "lc_points": "points",
        "lc_credit": "store credit",
        "lc_currency": "Credit currency (if several)",
        "lc_reason": "Reason",
        "lc_submit": "Post the correction",
        "lc_done": "Correction posted (ledger entry {id}).",
        "lc_again": "Already posted with this form: nothing more was done.",
        "ws_account": "My account",
        "ws_title": "Weekly summary email",
        "ws_help": "Last week's figures against the week before (NPS, new promoters, referral "
        "funnel, revenue, reward cost, ROI, plan), sent once a week to the users who choose it.",
        "ws_receive": "Receive the weekly summary",
        "ws_locale": "Language",
        "ws_save": "Save",
        "ws_schedule": "Sent on",
        "ws_day": "Day",
        "ws_hour": "Hour",
        "ws_timezone": "Brand time zone",
        "ws_days": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    },
    "zh-CN": {
        "lc_title": "调整余额",
        "lc_help": "在账本中新增一笔调整分录（不修改旧分录），并把调整前后的余额记入审计日志。"
        "正数增加，负数扣减；不能使可用余额低于零。",
        "lc_amount": "数量（积分，或储值的最小货币单位）",
        "lc_unit": "单位",
        "lc_points": "积分",
        "lc_credit": "储值",
        "lc_currency": "储值币种（有多种时）",
        "lc_reason": "原因",
        "lc_submit": "提交调整",
        "lc_done": "已提交调整（账本分录 {id}）。",
        "lc_again": "此表单已提交过：未重复调整。",
        "ws_account": "我的账号",
        "ws_title": "每周摘要邮件",
        "ws_help": "上周数据与前一周对比（NPS、新增推荐者、推荐漏斗、收入、奖励成本、ROI、计划），"
        "每周发送一次给选择接收的用户。",
        "ws_receive": "接收每周摘要",
        "ws_locale": "语言",
        "ws_save": "保存",
        "ws_schedule": "发送时间",
        "ws_day": "星期",
        "ws_hour": "时",
        "ws_timezone": "品牌时区",
        "ws_days": "周一,周二,周三,周四,周五,周六,周日",
    },
    "zh-TW": {
        "lc_title": "調整餘額",
        "lc_help": "在帳本中新增一筆調整分錄（不修改舊分錄），並把調整前後的餘額記入稽核日誌。"
        "正數增加，負數扣減；不能使可用餘額低於零。",
        "lc_amount": "數量（點數，或儲值的最小貨幣單位）",
        "lc_unit": "單位",
        "lc_points": "點數",
        "lc_credit": "儲值",
        "lc_currency": "儲值幣別（有多種時）",
        "lc_reason": "原因",
        "lc_submit": "送出調整",
        "lc_done": "已送出調整（帳本分錄 {id}）。",
        "lc_again": "此表單已送出過：未重複調整。",
        "ws_account": "我的帳號",
        "ws_title": "每週摘要郵件",
        "ws_help": "上週數據與前一週對比（NPS、新增推薦者、推薦漏斗、營收、獎勵成本、ROI、計畫），"
        "每週寄送一次給選擇接收的使用者。",
        "ws_receive": "接收每週摘要",
        "ws_locale": "語言",
        "ws_save": "儲存",
        "ws_schedule": "寄送時間",
        "ws_day": "星期",
        "ws_hour": "時",
        "ws_timezone": "品牌時區",
        "ws_days": "週一,週二,週三,週四,週五,週六,週日",
    },
}
