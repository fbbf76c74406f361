"""The web app's words in simplified Chinese (the default) and English, and numbers, money
and dates in each language's convention (2026年7月1日, ¥1,234, 12.5%)."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["LANGUAGES", "format_date", "format_money", "format_number", "format_percent", "translate"]

LANGUAGES = ("zh", "en")

# key -> (Chinese, English)
_WORDS: dict[str, tuple[str, str]] = {
    "app": ("客户数据平台", "Customer data platform"),
    "overview": ("总览", "Overview"),
    "segments": ("客户细分", "Segments"),
    "customer": ("客户360", "Customer 360"),
    "review": ("匹配审核", "Review queue"),
    "campaigns": ("营销活动", "Campaigns"),
    "lists": ("召回与提醒", "Win-back & reminders"),
    "kpis": ("经销商指标", "Dealer KPIs"),
    "audit": ("导出审计", "Export audit"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "user": ("用户名", "User"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码错误", "Wrong user or password"),
    "locked": ("尝试次数过多，请稍后再试", "Too many attempts: try again later"),
    "customers": ("客户数", "Customers"),
    "owners_by_stage": ("按生命周期划分的车主", "Owners by lifecycle stage"),
    "dormant": ("休眠", "Dormant"),
    "lost": ("流失", "Lost"),
    "active": ("活跃", "Active"),
    "new_owner": ("新车主", "New owner"),
    "prospect": ("潜客", "Prospect"),
    "defeated_lead": ("战败线索", "Defeated lead"),
    "contact": ("联系人", "Contact"),
    "trend": ("月度趋势", "Trend by month"),
    "month": ("月份", "Month"),
    "as_of": ("数据日期", "As of"),
    "not_built": ("尚未生成", "Not built yet"),
    "segment": ("细分", "Segment"),
    "size": ("人数", "Size"),
    "share": ("占比", "Share"),
    "traits": ("特征", "Traits"),
    "rule": ("规则", "Rule"),
    "play": ("建议动作", "What to do"),
    "model_version": ("模型版本", "Model version"),
    "trained": ("训练时间", "Trained"),
    "profile_vs_all": ("与全体对比", "Against everyone"),
    "feature": ("指标", "Feature"),
    "everyone": ("全体", "Everyone"),
    "top_cities": ("主要城市", "Top cities"),
    "top_models": ("主要车型", "Top models"),
    "lifecycle": ("生命周期", "Lifecycle"),
    "search": ("查询", "Search"),
    "search_hint": ("客户编号、手机号、车牌或VIN", "Customer ID, mobile, plate or VIN"),
    "no_customer": ("未找到客户", "No such customer"),
    "profile": ("客户资料", "Profile"),
    "vehicles": ("车辆", "Vehicles"),
    "owners": ("车主", "Owners"),
    "timeline": ("时间线", "Timeline"),
    "consent": ("联系许可", "Consent"),
    "channel": ("渠道", "Channel"),
    "opted_out": ("已退订", "Opted out"),
    "allowed": ("可联系", "Allowed"),
    "reveal": ("查看完整信息", "Reveal full details"),
    "purpose": ("查看目的", "Purpose"),
    "revealed": ("完整信息（已记录审计）", "Full details (audited)"),
    "masked": ("已脱敏", "Masked"),
    "why_joined": ("合并依据", "Why these records were joined"),
    "match_weight": ("匹配权重", "Match weight"),
    "probability": ("匹配概率", "Match probability"),
    "vehicle_owner_join": ("无姓名记录，按车辆当时的车主归并", "Names nobody: joined the vehicle's owner at its date"),
    "reminders": ("保养提醒", "Reminders"),
    "kind": ("类型", "Kind"),
    "due": ("到期日", "Due"),
    "dealer": ("经销商", "Dealer"),
    "confirm": ("确认合并", "Confirm"),
    "split": ("拆分", "Split"),
    "decided": ("已记录，下次运行生效", "Recorded: the next run honours it"),
    "near_miss": ("疑似未合并", "Near miss"),
    "weak_join": ("弱合并", "Weak join"),
    "campaign": ("活动", "Campaign"),
    "preview": ("预览", "Preview"),
    "build": ("生成名单", "Build list"),
    "versions": ("版本历史", "Versions"),
    "version": ("版本", "Version"),
    "qualifying": ("符合条件", "Qualifying"),
    "suppression": ("排除原因", "Suppression"),
    "alone": ("单独", "Alone"),
    "in_order": ("依次", "In order"),
    "members": ("成员", "Members"),
    "listed": ("名单", "Listed"),
    "control": ("对照组", "Control group"),
    "reach": ("各渠道可触达", "Reachable by channel"),
    "download_csv": ("下载CSV", "Download CSV"),
    "download_xlsx": ("下载Excel", "Download XLSX"),
    "jobs": ("后台任务", "Background jobs"),
    "status": ("状态", "Status"),
    "queued": ("排队中", "Queued"),
    "running": ("运行中", "Running"),
    "done": ("完成", "Done"),
    "failed": ("失败", "Failed"),
    "winback": ("流失客户召回", "Win-back list"),
    "rank": ("排名", "Rank"),
    "p_return": ("回厂概率", "Return probability"),
    "expected_value": ("预期价值", "Expected value"),
    "reasons": ("原因", "Reasons"),
    "name": ("姓名", "Name"),
    "mobile": ("手机", "Mobile"),
    "level": ("层级", "Level"),
    "active_rate": ("活跃率", "Active rate"),
    "dormant_rate": ("休眠率", "Dormant rate"),
    "lost_rate": ("流失率", "Lost rate"),
    "new_owners": ("新车主", "New owners"),
    "owners_served": ("服务车主", "Owners served"),
    "won_back": ("召回成功", "Won back"),
    "leads": ("线索", "Leads"),
    "conversion": ("转化率", "Conversion"),
    "defeated_rate": ("战败率", "Defeated rate"),
    "ftf": ("一次修复率", "First-time fix"),
    "complaints": ("投诉", "Complaints"),
    "late": ("超时", "Late"),
    "exported_at": ("时间", "When"),
    "list": ("名单", "List"),
    "rows": ("行数", "Rows"),
    "forbidden": ("无权访问", "Forbidden"),
    "not_found": ("未找到", "Not found"),
    "bad_request": ("请求无效", "Bad request"),
    "language": ("English", "中文"),
    "left": ("记录A", "Record A"),
    "right": ("记录B", "Record B"),
    "feed": ("来源", "Source"),
    "seen_at": ("时间", "Seen"),
    "id_number": ("证件号", "ID number"),
    "none": ("无", "None"),
    "dealer_code": ("经销商", "Dealer"),
    "vin": ("车架号", "VIN"),
    "city": ("城市", "City"),
    "records": ("条记录", "records"),
    "links": ("条连接", "links"),
    "no_statement": ("无退订记录", "No opt-out on record"),
    "opted_out_flag": ("已退订", "Opted out"),
    "unreachable": ("无有效联系方式", "Unreachable"),
    "open_complaint": ("有未结投诉", "Open complaint"),
    "recently_contacted": ("近期已联系", "Recently contacted"),
    "claimed_by_priority": ("已被优先活动占用", "Taken by a higher priority"),
    "maintenance": ("定期保养", "Maintenance"),
    "first_maintenance": ("首次保养", "First maintenance"),
    "warranty_expiry": ("质保到期", "Warranty expiry"),
    "insurance_renewal": ("保险续保", "Insurance renewal"),
    "inspection": ("年检", "Inspection"),
    "birthday": ("生日", "Birthday"),
    "sales_orders": ("销售订单", "Sales order"),
    "service_orders": ("维修工单", "Repair order"),
    "warranty_claims": ("保修索赔", "Warranty claim"),
    "surveys": ("满意度回访", "Survey"),
    "marketer": ("市场专员", "Marketer"),
    "manager": ("经销商经理", "Manager"),
    "reviewer": ("审核员", "Reviewer"),
    "privileged": ("授权查看", "Privileged"),
    "admin": ("管理员", "Admin"),
    "sms": ("短信", "SMS"),
    "phone": ("电话", "Phone"),
    "wechat": ("微信", "WeChat"),
    "email": ("邮件", "E-mail"),
}


def translate(key: str, language: str) -> str:
    """The word for `key` in `language`; the key itself when there is none (never an error)."""
    words = _WORDS.get(key)
    if words is None:
        return key
    return words[0] if language == "zh" else words[1]


def format_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def format_money(value: Any) -> str:
    return "-" if value is None else f"¥{float(value):,.0f}"


def format_percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def format_date(value: Any, language: str) -> str:
    """2026年7月1日 in Chinese, 2026-07-01 in English; times keep hours and minutes."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return f"{value.year}年{value.month}月{value.day}日 {value:%H:%M}" if language == "zh" else f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return f"{value.year}年{value.month}月{value.day}日" if language == "zh" else f"{value:%Y-%m-%d}"
    return str(value)
