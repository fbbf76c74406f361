"""客服月度分析报告: a dealer's monthly customer-care report as one HTML file, readable
offline (charts are inline SVG whose text the browser draws, so Chinese needs no font here).

Sections, as dealers write them: the month at a glance against last month, the region and
the group; satisfaction by item; complaint tracking with causes; lost-owner analysis;
campaign and reminder results; and next month's figures to watch."""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from cdp import catalog
from cdp.errors import CdpError
from cdp.reader import LakeReader
from operations.figures import DealerMonth, MonthFigures, latest_built, load_month, satisfaction_history

__all__ = ["render_dealer_report", "write_dealer_report"]

SURVEY_NAMES = {"ssi": "销售满意度 SSI", "csi": "售后满意度 CSI", "complaint_followup": "投诉回访"}
CATEGORY_NAMES = {"product_quality": "产品质量", "service": "服务", "sales": "销售", "parts": "配件", "other": "其他"}
SEVERITY_NAMES = {"normal": "一般", "major": "重大", "media": "媒体"}
STATUS_NAMES = {"open": "待响应", "responded": "处理中", "closed": "已结案"}
REMINDER_NAMES = {"first_maintenance": "首次保养", "maintenance": "定期保养", "warranty_expiry": "质保到期",
                  "insurance_renewal": "保险续保", "annual_inspection": "年检", "birthday": "生日关怀"}
_KPIS = (
    ("owners", "保有客户", "n"), ("active_rate", "活跃率", "%"), ("dormant_rate", "休眠率", "%"), ("lost_rate", "流失率", "%"),
    ("new_owners", "新增客户", "n"), ("owners_served", "进店客户", "n"), ("first_visits", "首保进店", "n"), ("won_back", "流失召回", "n"),
    ("leads", "新增线索", "n"), ("lead_conversion_rate", "线索成交率", "%"), ("defeated_rate", "战败率", "%"),
    ("first_time_fix_rate", "一次修复率", "%"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if kind == "%" else f"{value:,}" if isinstance(value, int) else f"{value:.1f}"


def _svg(figure: Any) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg"):])


def _line_chart(months: list[str], series: dict[str, list[float | None]], percent: bool = False) -> Markup:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": ["sans-serif"],
                                "font.sans-serif": ["Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "DejaVu Sans"]}), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs this machine lacks: the browser draws the text
        figure, axis = plt.subplots(figsize=(7, 2.6))
        for name, values in series.items():
            axis.plot(months, [float("nan") if v is None else v * (100 if percent else 1) for v in values], marker="o", label=name)
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize=8)
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
        return _svg(figure)


def _bar_chart(labels: list[str], values: list[float], compare: list[float] | None = None) -> Markup:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure, axis = plt.subplots(figsize=(7, 2.6))
        positions = range(len(labels))
        width = 0.4 if compare is not None else 0.6
        axis.bar([p - (width / 2 if compare is not None else 0) for p in positions], values, width, label="本月")
        if compare is not None:
            axis.bar([p + width / 2 for p in positions], compare, width, label="上月")
            axis.legend(fontsize=8)
        axis.set_xticks(list(positions), labels, fontsize=8)
        axis.grid(axis="y", alpha=0.3)
        return _svg(figure)


def _previous(reader: LakeReader, figures: MonthFigures, dealer: str) -> DealerMonth | None:
    last = (figures.month - dt.timedelta(days=1)).replace(day=1)
    try:
        return load_month(reader, dealer, last, figures.as_of).row("dealer", dealer)
    except CdpError:  # no figures for the month before: nothing to compare
        return None


def _kpi_history(reader: LakeReader, figures: MonthFigures, dealer: str, region: str) -> dict[str, Any]:
    rows = reader.query(
        "SELECT month, level, lost_rate, active_rate FROM k WHERE as_of_date = ? AND month <= ? AND "
        "((level = 'dealer' AND dealer_code = ?) OR (level = 'region' AND dealer_code = ?) OR level = 'group') ORDER BY month",
        {"k": catalog.DEALER_KPIS_MONTHLY}, [figures.as_of, figures.month, dealer, region],
    )
    months = sorted({f"{r['month']:%Y-%m}" for r in rows})[-12:]
    by = {(f"{r['month']:%Y-%m}", r["level"]): r for r in rows}
    return {"months": months, "series": {name: [by.get((m, level), {}).get("lost_rate") for m in months]
                                         for name, level in ((dealer, "dealer"), ("区域", "region"), ("集团", "group"))}}


def _complaint_detail(reader: LakeReader, dealer: str, month: dt.date) -> dict[str, Any]:
    day = latest_built(reader, catalog.COMPLAINT_CASES)
    if day is None:
        return {"by_category": [], "late": []}
    tables = {"c": catalog.COMPLAINT_CASES}
    by_category = reader.query(
        "SELECT category, count(*) AS cases, count(*) FILTER (WHERE response_breached OR closure_breached) AS late, "
        "count(valid_reason) AS valid_by_repeat FROM c WHERE as_of_date = ? AND dealer_code = ? AND date_trunc('month', received_at) = ? "
        "GROUP BY category ORDER BY cases DESC, category", tables, [day, dealer, month])
    late = reader.query(
        "SELECT complaint_id, category, severity, status, received_at, response_breached, closure_breached FROM c "
        "WHERE as_of_date = ? AND dealer_code = ? AND date_trunc('month', received_at) = ? AND (response_breached OR closure_breached) "
        "ORDER BY received_at", tables, [day, dealer, month])
    for row in by_category:
        row["name"] = CATEGORY_NAMES.get(row["category"], row["category"])
    for row in late:
        # Times are the dealers' wall-clock times (stored as UTC): shown as written, no offset.
        row.update(category=CATEGORY_NAMES.get(row["category"], row["category"]), severity=SEVERITY_NAMES.get(row["severity"], row["severity"]),
                   status=STATUS_NAMES.get(row["status"], row["status"]), received_at=f"{row['received_at']:%Y-%m-%d %H:%M}")
    return {"by_category": by_category, "late": late}


def _campaigns(reader: LakeReader, dealer: str, month: dt.date) -> dict[str, Any]:
    out: dict[str, Any] = {"results": [], "reminders": []}
    if (day := latest_built(reader, catalog.CAMPAIGN_RESULTS)) is not None:
        out["results"] = reader.query(
            "SELECT campaign, version, list_as_of, listed, control, listed_rate, control_rate, lift, lift_ci_low, lift_ci_high, significant "
            "FROM r WHERE as_of_date = ? ORDER BY list_as_of DESC, campaign LIMIT 10", {"r": catalog.CAMPAIGN_RESULTS}, [day])
    if (day := latest_built(reader, catalog.REMINDER_FOLLOWTHROUGH)) is not None:
        out["reminders"] = reader.query(
            "SELECT kind, due_month, reminded, came, came_share FROM f WHERE as_of_date = ? AND dealer_code = ? "
            "ORDER BY due_month DESC, kind LIMIT 6", {"f": catalog.REMINDER_FOLLOWTHROUGH}, [day, dealer])
    return out


def _to_watch(reader: LakeReader, dealer: str, figures: MonthFigures) -> list[tuple[str, Any]]:
    """Figures for the month ahead, each from its own table when it has been built."""
    watch: list[tuple[str, Any]] = []
    probes = (
        ("未结投诉", catalog.COMPLAINT_CASES, "SELECT count(*) FROM t WHERE as_of_date = ? AND dealer_code = ? AND status <> 'closed'"),
        ("待回访客户(低分)", catalog.SATISFACTION_CALLBACKS, "SELECT count(*) FROM t WHERE as_of_date = ? AND dealer_code = ?"),
        ("流失召回名单", catalog.WINBACK, "SELECT count(*) FROM t WHERE as_of_date = ? AND dealer_code = ?"),
        ("下月到期提醒", catalog.REMINDERS,
         "SELECT count(*) FROM t WHERE as_of_date = ? AND dealer_code = ? AND due_date >= date_trunc('month', as_of_date) + INTERVAL 1 MONTH "
         "AND due_date < date_trunc('month', as_of_date) + INTERVAL 2 MONTH"),
    )
    for label, table, sql in probes:
        if (day := latest_built(reader, table)) is not None:
            watch.append((label, reader.scalar(sql, {"t": table}, [day, dealer])))
    row = figures.row("dealer", dealer)
    if row is not None:
        watch.append(("休眠客户(将流失)", row.kpi["owners_dormant"]))
    return watch


_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ dealer }} 客服月度分析报告 {{ month }}</title>
<style>
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #c00; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; } .note { color: #666; font-size: .9em; } .up { color: #080; } .down { color: #c00; }
@media print { h2 { page-break-before: always; } h2:first-of-type { page-break-before: avoid; } }
</style></head><body>
<h1>{{ dealer }} 客服月度分析报告 · {{ month }}</h1>
<p class="note">区域 {{ region }} · 数据截至 {{ as_of }}{% if not complete %} · 本月数据尚不完整{% endif %}</p>

<h2>一、本月概览</h2>
<table><tr><th>指标</th><th>本月</th><th>上月</th><th>区域</th><th>集团</th></tr>
{% for key, label, value, last, region_value, group_value in kpis %}
<tr><td>{{ label }}</td><td>{{ value }}</td><td>{{ last }}</td><td>{{ region_value }}</td><td>{{ group_value }}</td></tr>
{% endfor %}</table>

<h2>二、满意度 (CSS)</h2>
{% for kind in surveys %}
<h3>{{ kind.name }}: {{ kind.score }} 分{% if kind.change is not none %} (较上月 {{ "%+.1f"|format(kind.change) }}){% endif %}</h3>
<p>区域排名 {{ kind.rank_region }} · 集团排名 {{ kind.rank_group }} · 区域均值 {{ kind.region }} · 集团均值 {{ kind.group }} · 样本 {{ kind.surveys }} · 非常满意 {{ kind.very }}</p>
{% if kind.item_rows %}<table><tr><th>项目</th><th>本月</th><th>上月</th><th>变化</th></tr>
{% for item in kind.item_rows %}<tr><td>{{ item.name }}</td><td>{{ item.now }}</td><td>{{ item.last }}</td>
<td class="{{ item.trend }}">{{ item.change }}</td></tr>{% endfor %}</table>{% endif %}
{% if kind.chart %}<p class="note">近 12 个月加权得分: 本店、区域、集团</p>{{ kind.chart }}{% endif %}
{% else %}<p>本月无满意度回访。</p>{% endfor %}

<h2>三、投诉跟踪</h2>
<p>本月受理 {{ complaints.cases }} 件 · 超时 {{ complaints.late }} 件 · 未结 {{ complaints.open }} 件 · 重复投诉认定有效 {{ complaints.valid_by_repeat }} 件 · 需报区域 {{ complaints.report_to_region }} 件</p>
{% if complaint_detail.by_category %}<table><tr><th>投诉原因</th><th>件数</th><th>超时</th><th>重复有效</th></tr>
{% for c in complaint_detail.by_category %}<tr><td>{{ c.name }}</td><td>{{ c.cases }}</td><td>{{ c.late }}</td><td>{{ c.valid_by_repeat }}</td></tr>{% endfor %}
</table>{{ complaint_chart }}{% endif %}
{% if complaint_detail.late %}<p>超时案件:</p><table><tr><th>编号</th><th>原因</th><th>级别</th><th>状态</th><th>受理时间</th><th>首次响应超时</th><th>结案超时</th></tr>
{% for c in complaint_detail.late %}<tr><td>{{ c.complaint_id }}</td><td>{{ c.category }}</td><td>{{ c.severity }}</td><td>{{ c.status }}</td>
<td>{{ c.received_at }}</td><td>{{ "是" if c.response_breached else "否" }}</td><td>{{ "是" if c.closure_breached else "否" }}</td></tr>{% endfor %}</table>{% endif %}

<h2>四、流失客户分析</h2>
<p>保有客户 {{ owners }} · 休眠 {{ dormant }} · 流失 {{ lost }} (流失率 {{ lost_rate }}) · 本月召回 {{ won_back }}</p>
{% if lost_by_model %}<table><tr><th>车型</th><th>保有</th><th>流失</th><th>流失率</th></tr>
{% for m in lost_by_model %}<tr><td>{{ m.model }}</td><td>{{ m.owners }}</td><td>{{ m.lost }}</td><td>{{ m.rate }}</td></tr>{% endfor %}</table>{% endif %}
<p class="note">近 12 个月流失率: 本店、区域、集团</p>{{ lost_chart }}

<h2>五、营销活动与提醒</h2>
{% if campaigns.results %}<table><tr><th>活动</th><th>版本</th><th>名单日期</th><th>名单人数</th><th>对照组</th><th>名单响应率</th><th>对照响应率</th><th>提升 (95% 置信区间)</th></tr>
{% for r in campaigns.results %}<tr><td>{{ r.campaign }}</td><td>{{ r.version }}</td><td>{{ r.list_as_of }}</td><td>{{ r.listed }}</td><td>{{ r.control }}</td>
<td>{{ pct(r.listed_rate) }}</td><td>{{ pct(r.control_rate) }}</td><td>{{ pct(r.lift) }} ({{ pct(r.lift_ci_low) }} ~ {{ pct(r.lift_ci_high) }}){% if r.significant %} ✔{% endif %}</td></tr>{% endfor %}</table>
{% else %}<p>暂无已到期的活动评估。</p>{% endif %}
{% if campaigns.reminders %}<table><tr><th>提醒</th><th>到期月份</th><th>提醒人数</th><th>到店</th><th>到店率</th></tr>
{% for r in campaigns.reminders %}<tr><td>{{ reminder_names.get(r.kind, r.kind) }}</td><td>{{ r.due_month.strftime('%Y-%m') if r.due_month else '-' }}</td><td>{{ r.reminded }}</td><td>{{ r.came }}</td><td>{{ pct(r.came_share) }}</td></tr>{% endfor %}</table>{% endif %}

<h2>六、下月重点关注</h2>
<table><tr><th>事项</th><th>数量</th></tr>{% for label, value in watch %}<tr><td>{{ label }}</td><td>{{ value }}</td></tr>{% endfor %}</table>
</body></html>
"""


def _pct(value: float | None) -> str:
    return _fmt(value, "%")


def render_dealer_report(reader: LakeReader, figures: MonthFigures, dealer: str, item_labels: Mapping[str, str] | None = None) -> str:
    """The report's HTML for `dealer` (one of the figures' dealers)."""
    row = figures.row("dealer", dealer)
    if row is None:
        raise ValueError(f"no figures for dealer {dealer}")
    region, group = figures.row("region", row.region or ""), figures.row("group", "group")
    if region is None or group is None:
        mine = load_month(reader, dealer, figures.month, figures.as_of)
        region, group = mine.row("region", row.region or ""), mine.row("group", "group")
    last = _previous(reader, figures, dealer)
    kpis = [(key, label, _fmt(row.kpi[key], kind), _fmt(last.kpi[key], kind) if last else "-",
             _fmt(region.kpi[key], kind) if region else "-", _fmt(group.kpi[key], kind) if group else "-") for key, label, kind in _KPIS]
    surveys = []
    for kind, figures_now in sorted(row.surveys.items()):
        before = (last.surveys.get(kind) if last else None) or {}
        items_now, items_last = figures_now.get("item_avgs") or {}, before.get("item_avgs") or {}
        items = [{"name": (item_labels or {}).get(name, name), "now": f"{value:.1f}", "last": "-" if name not in items_last else f"{items_last[name]:.1f}",
                  "change": "-" if name not in items_last else f"{value - items_last[name]:+.1f}",
                  "trend": "" if name not in items_last else "up" if value > items_last[name] else "down" if value < items_last[name] else ""}
                 for name, value in sorted(dict(items_now).items())]
        history = satisfaction_history(reader, dealer, kind)
        chart = _line_chart([f"{h['month']:%Y-%m}" for h in history], {
            dealer: [h["avg_weighted"] for h in history], "区域": [h["region_avg_weighted"] for h in history],
            "集团": [h["group_avg_weighted"] for h in history]}) if len(history) > 1 else None
        region_sat = region.surveys.get(kind, {}) if region else {}
        group_sat = group.surveys.get(kind, {}) if group else {}
        surveys.append({
            "name": SURVEY_NAMES.get(kind, kind), "score": _fmt(figures_now["avg_weighted"], "n"), "change": figures_now.get("change_on_prev_month"),
            "rank_region": f"{figures_now['rank_in_region']}/{figures_now['dealers_in_region']}",
            "rank_group": f"{figures_now['rank_in_group']}/{figures_now['dealers_in_group']}",
            "region": _fmt(region_sat.get("avg_weighted"), "n"), "group": _fmt(group_sat.get("avg_weighted"), "n"),
            "surveys": figures_now["surveys"], "very": _pct(figures_now["very_satisfied_share"]), "item_rows": items, "chart": chart,
        })
    detail = _complaint_detail(reader, dealer, figures.month)
    complaint_chart = _bar_chart([c["name"] for c in detail["by_category"]], [c["cases"] for c in detail["by_category"]]) if detail["by_category"] else ""
    owners_by_model, lost_by_model = dict(row.kpi.get("owners_by_model") or {}), dict(row.kpi.get("lost_by_model") or {})
    models = [{"model": "未知车型" if m == "unknown" else m, "owners": n, "lost": lost_by_model.get(m, 0), "rate": _pct(lost_by_model.get(m, 0) / n if n else None)}
              for m, n in sorted(owners_by_model.items(), key=lambda kv: -kv[1])]
    history = _kpi_history(reader, figures, dealer, row.region or "")
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return environment.from_string(_TEMPLATE).render(
        dealer=dealer, month=f"{figures.month:%Y-%m}", as_of=figures.as_of, complete=figures.complete, region=row.region, kpis=kpis,
        surveys=surveys, complaints=row.complaints, complaint_detail=detail, complaint_chart=complaint_chart,
        owners=row.kpi["owners"], dormant=row.kpi["owners_dormant"], lost=row.kpi["owners_lost"], lost_rate=_pct(row.kpi["lost_rate"]),
        won_back=row.kpi["won_back"], lost_by_model=models,
        lost_chart=_line_chart(history["months"], history["series"], percent=True) if history["months"] else "",
        campaigns=_campaigns(reader, dealer, figures.month), watch=_to_watch(reader, dealer, figures), pct=_pct,
        reminder_names=REMINDER_NAMES,
    )


def write_dealer_report(
    reader: LakeReader, figures: MonthFigures, dealer: str, folder: Path, item_labels: Mapping[str, str] | None = None
) -> Path:
    """Write `<folder>/<dealer>-<YYYY-MM>.html` (replacing an older one) and return its path;
    survey items are shown by their `item_labels` (the item's code when it has none)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dealer}-{figures.month:%Y-%m}.html"
    staging = path.with_suffix(".html.tmp")
    staging.write_text(render_dealer_report(reader, figures, dealer, item_labels), encoding="utf-8")
    staging.replace(path)
    return path
