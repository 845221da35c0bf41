/*
 * 销售助手 · 主管看板: customers, follow-ups and tasks (顾客画像、跟进、任务).
 *
 * Loaded after app.js, whose helpers it uses (h, api, field, fact, tile, toast, the formatters,
 * highlightMessage). It draws the customer's profile beside a conversation (customerPanel) and
 * the views #/followups?date=&guide_id=&store_id=, #/tasks, #/tasks/new and #/tasks/<id>. Like
 * app.js it builds every element with DOM calls and textContent, never innerHTML.
 */
"use strict";

// ------------------------------------------------------------------------ customer profile

const STAGE_NAMES = { new: "新客", considering: "考虑中", bought: "已购买", after_sales: "售后中" };
const WHOM_NAMES = { self: "本人", partner: "伴侣", parent: "长辈", child: "孩子", friend: "朋友" };
const FACT_GROUPS = [
  ["尺码身材", ["height_cm", "weight_kg", "size", "shoe_size"]],
  ["预算", ["budget_max"]],
  ["肤质", ["skin_type", "skin_tone"]],
  ["宝宝月龄", ["baby_age_months"]],
  ["为谁购买", ["buying_for"]],
  ["关注商品", ["product"]],
  ["顾虑", ["objection"]],
  ["偏好", ["preference"]],
  ["约定回访", ["come_back"]],
];
const FACT_VALUES = {
  skin_type: { dry: "干性", oily: "油性", combination: "混合性", sensitive: "敏感肌", normal: "中性" },
  skin_tone: { fair: "肤色白皙", yellow: "肤色偏黄", dark: "肤色偏深" },
  buying_for: WHOM_NAMES,
  objection: { price: "价格", trust: "正品/质量" },
};
const FACT_FORMATS = {
  height_cm: (v) => `身高 ${v} cm`,
  weight_kg: (v) => `体重 ${v} kg`,
  size: (v) => `尺码 ${v}`,
  shoe_size: (v) => `鞋码 ${v}`,
  budget_max: (v) => `¥${fmtInt(v)} 以内`,
  baby_age_months: (v) => `${v} 个月`,
};

function factValue(item) {
  const named = FACT_VALUES[item.type] && FACT_VALUES[item.type][item.value];
  if (named) return named;
  const format = FACT_FORMATS[item.type];
  return format ? format(item.value) : String(item.value);
}

/**
 * The profile panel beside a conversation: it draws at once and fills itself when
 * GET /v1/customers/{id} answers, so the conversation never waits for it.
 */
function customerPanel(customerId, chat, conversationId, isCurrent) {
  const body = h("div", { class: "customer-body" }, loadingBox());
  const panel = h("aside", { class: "panel customer-panel", "data-testid": "customer-panel" },
    h("h3", null, "顾客画像"), body);
  if (!customerId) {
    replaceChildren(body, emptyBox("这段会话没有顾客编号，无法汇总画像。"));
    return panel;
  }
  api(`/v1/customers/${encodeURIComponent(customerId)}`).then(
    (profile) => isCurrent() && replaceChildren(body, profileView(profile, chat, conversationId)),
    (err) => isCurrent() && replaceChildren(body, err.status === 404 ? emptyBox("看不到这位顾客的画像。") : errorBox(err)));
  return panel;
}

function profileView(profile, chat, conversationId) {
  const facts = profile.facts || [];
  // Within a group, types in the group's order (身高 before 尺码); a type's values newest first.
  const groups = FACT_GROUPS.map(([name, types]) => [name, facts.filter((f) => types.includes(f.type))
    .sort((a, b) => types.indexOf(a.type) - types.indexOf(b.type))]);
  const missing = groups.filter(([, items]) => !items.length).map(([name]) => name);
  return [
    h("div", { class: "profile-head" },
      h("strong", { "data-testid": "customer-id" }, profile.customer_id),
      h("span", { class: `chip chip-stage stage-${profile.stage}`, "data-testid": "customer-stage" },
        STAGE_NAMES[profile.stage] || profile.stage)),
    h("dl", { class: "facts facts-compact" },
      fact("最近联系", fmtTime(profile.last_contact)),
      fact("会话", `${fmtInt((profile.conversations || []).length)} 段`)),
    groups.filter(([, items]) => items.length).map(([name, items]) =>
      h("section", { class: "fact-group", "data-testid": "fact-group", "data-group": name },
        h("h4", null, name),
        h("ul", { class: "evidence-list" }, items.map((f) => h("li", null, factItem(f, chat, conversationId)))))),
    missing.length ? h("p", { class: "muted small" }, `未提及：${missing.join("、")}`) : null,
    h("h4", null, "订单"),
    orderList(profile.orders || []),
  ];
}

/** One fact: its value, and the message it came from (scrolled to here, or linked to). */
function factItem(item, chat, conversationId) {
  const whom = item.whom && item.whom !== "self" && item.type !== "buying_for"
    ? `（${WHOM_NAMES[item.whom] || item.whom}）` : "";
  const here = item.conversation_id === conversationId;
  const attrs = {
    class: "evidence fact-item", title: `「${item.text}」 ${fmtTime(item.at)}`, "data-testid": "fact",
    "data-type": item.type, "data-conversation": item.conversation_id, "data-message-index": item.message_index,
  };
  const content = [
    h("span", { class: "evidence-reason" }, h("span", { "data-testid": "fact-value" }, factValue(item), whom),
      h("span", { class: "fact-quote muted" }, `「${item.text}」`)),
    h("span", { class: "evidence-ref" }, here ? `#${item.message_index}` : `其他会话 #${item.message_index}`),
  ];
  if (!here) {
    const href = `#/conversations/${encodeURIComponent(item.conversation_id)}?m=${item.message_index}`;
    return h("a", { ...attrs, href }, content);
  }
  const button = h("button", { ...attrs, type: "button" }, content);
  button.addEventListener("click", () => highlightMessage(chat, item.message_index, button));
  return button;
}

function orderList(orders) {
  if (!orders.length) return emptyBox("没有订单。");
  return h("ul", { class: "orders", "data-testid": "orders" }, orders.map((o) => h("li", { "data-testid": "order" },
    h("span", null, o.amount === null || o.amount === undefined ? "—" : `¥${o.amount}`),
    h("span", null, o.product || "—"),
    h("span", { class: "muted" }, fmtTime(o.paid_at)))));
}

// ------------------------------------------------------------------------------- dates

/** Today in China time as YYYY-MM-DD (the day the API's queue and actions use). */
function chinaToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
}

function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** "2026年12月1日 周二": a YYYY-MM-DD day in zh-CN. */
function fmtDay(day) {
  if (!day) return "—";
  const date = new Date(`${String(day).slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return String(day);
  return new Intl.DateTimeFormat("zh-CN", {
    timeZone: "UTC", year: "numeric", month: "long", day: "numeric", weekday: "short",
  }).format(date);
}

/** A task's deadline: a whole day is stored as the next midnight, shown as that day. */
function fmtDeadline(iso) {
  const text = fmtTime(iso);
  return text.endsWith(" 00:00") ? `${fmtDate(addDays(String(iso).slice(0, 10), -1))}（含当天）` : text;
}

// ------------------------------------------------------------------------------ follow-ups

const REASON_CLASSES = { unanswered: "poor", come_back: "accent", hesitated: "fair", after_sales_care: "good" };

async function renderFollowups(view, query, isCurrent) {
  const today = chinaToday();
  const params = {
    date: /^\d{4}-\d{2}-\d{2}$/.test(query.get("date") || "") ? query.get("date") : today,
    guide_id: query.get("guide_id") || "", store_id: query.get("store_id") || "",
  };
  const results = h("div", { class: "results" }, loadingBox());
  append(view, h("h2", null, "跟进"), followupFilters(params, today), results);
  fillGuideOptions();
  const data = await api("/v1/followups", { params });
  if (!isCurrent()) return;
  const items = data.items || [];
  const count = h("span", { "data-testid": "result-count" });
  const list = h("div", { class: "followups", "data-testid": "followup-list" });
  const update = () => {
    const left = list.querySelectorAll("[data-testid=followup]").length;
    const overdue = list.querySelectorAll("[data-testid=followup].overdue").length;
    count.textContent = `${fmtDay(params.date)} · 共 ${left} 位顾客待跟进${overdue ? ` · 逾期 ${overdue}` : ""}`;
    if (!left) replaceChildren(list, emptyBox("这一天没有待跟进的顾客。"));
  };
  append(list, items.map((entry) => followupCard(entry, params.date === today, update)));
  replaceChildren(results, h("div", { class: "result-bar" }, count),
    params.date === today ? null : h("p", { class: "note", "data-testid": "not-today" },
      "只能处理今天的跟进；其他日期仅供查看。"),
    list);
  update();
}

function followupHash(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  return `#/followups${query.toString() ? `?${query}` : ""}`;
}

function followupFilters(params, today) {
  const day = h("input", { name: "date", type: "date", value: params.date, required: true,
    "data-testid": "followup-date" });
  const go = (date) => { location.hash = followupHash({ ...values(), date }); };
  const values = () => Object.fromEntries(new FormData(form).entries());
  const form = h("form", { class: "filters", "data-testid": "followup-filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = followupHash(values());
  } },
  field("日期", h("span", { class: "range" }, day,
    h("span", { class: "day-label", "data-testid": "followup-day" }, fmtDay(params.date)))),
  h("div", { class: "day-steps" },
    h("button", { type: "button", class: "btn", onclick: () => go(addDays(params.date, -1)) }, "前一天"),
    h("button", { type: "button", class: "btn", "data-testid": "followup-today", onclick: () => go(today) }, "今天"),
    h("button", { type: "button", class: "btn", onclick: () => go(addDays(params.date, 1)) }, "后一天")),
  field("导购", h("input", { name: "guide_id", value: params.guide_id, list: "guide-options", placeholder: "全部",
    autocomplete: "off", "data-testid": "followup-guide" })),
  h("datalist", { id: "guide-options" }),
  field("门店", storeControl(params.store_id, "followup-store")),
  h("div", { class: "filter-actions" },
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "followup-apply" }, "查看")));
  day.addEventListener("change", () => form.requestSubmit());
  return form;
}

/** One entry: who, why, by when, the first message to send, and what the guide did. */
function followupCard(entry, canAct, onGone) {
  const trigger = entry.trigger || {};
  const link = trigger.conversation_id
    ? `#/conversations/${encodeURIComponent(trigger.conversation_id)}?m=${trigger.message_index}` : null;
  const card = h("article", {
    class: `card followup${entry.overdue ? " overdue" : ""}`, "data-testid": "followup", "data-id": entry.id,
    "data-customer": entry.customer_id,
  },
  h("div", { class: "followup-head" },
    h("span", { class: `chip chip-${REASON_CLASSES[entry.reason] || "accent"}`, "data-testid": "followup-title" },
      entry.title),
    h("strong", null, entry.customer_id),
    h("span", { class: "muted" }, `导购 ${entry.guide_id || "—"} · 门店 ${entry.store_id || "—"}`),
    h("span", { class: "followup-due", "data-testid": "followup-due" }, `截止 ${fmtDay(entry.due)}`,
      entry.overdue ? h("span", { class: "chip chip-poor", "data-testid": "overdue" }, "已逾期") : null)),
  h("p", { class: "followup-why", "data-testid": "followup-why" }, entry.why),
  trigger.text ? h("p", { class: "muted small" }, "顾客说：",
    link ? h("a", { href: link, "data-testid": "followup-trigger" }, `「${trigger.text}」`) : `「${trigger.text}」`,
    ` ${fmtTime(trigger.at)}`) : null,
  messageBox(entry),
  followupActions(entry, canAct, () => { card.remove(); onGone(); }));
  return card;
}

function messageBox(entry) {
  const text = h("div", { class: "coach-text", "data-testid": "followup-message" }, entry.message);
  return h("div", { class: "coach-card followup-message" },
    h("div", { class: "coach-title" }, "建议首条消息",
      h("button", { type: "button", class: "btn btn-small", "data-testid": "copy-message",
        onclick: () => copyText(entry.message, text) }, "复制")),
    text,
    entry.needs_edit ? h("div", { class: "coach-reason" },
      `发送前请补充：${(entry.slots || []).join("、") || "方括号内的内容"}`) : null);
}

/** Copies to the clipboard; where the browser refuses, selects the text for Ctrl+C. */
async function copyText(text, element) {
  try {
    await navigator.clipboard.writeText(text);
    toast("已复制到剪贴板");
  } catch (err) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    toast("已选中文字，请按 Ctrl+C 复制");
  }
}

function followupActions(entry, canAct, gone) {
  const extra = h("div", { class: "followup-extra" });
  const send = async (body, done) => {
    for (const b of box.querySelectorAll("button")) b.disabled = true;
    try {
      await api(`/v1/followups/${encodeURIComponent(entry.id)}`, { method: "POST", body });
      toast(`${entry.customer_id}：${done}`);
      gone();
    } catch (err) {
      toast(`操作失败：${err.message}`);
      for (const b of box.querySelectorAll("button")) b.disabled = false;
    }
  };
  const ask = (control, confirm, testid) => replaceChildren(extra, h("form", { class: "inline-form", onsubmit: (event) => {
    event.preventDefault();
    confirm(control.value.trim());
  } }, control, h("button", { type: "submit", class: "btn btn-primary btn-small", "data-testid": testid }, "确定")));
  const snooze = () => ask(h("input", { type: "date", required: true, min: addDays(chinaToday(), 1),
    value: addDays(chinaToday(), 1), "data-testid": "snooze-until" }),
  (until) => send({ status: "snoozed", until }, `已推迟到 ${fmtDay(until)}`), "snooze-confirm");
  const dismiss = () => ask(h("input", { required: true, maxlength: 200, placeholder: "忽略原因，如：已到店购买",
    "data-testid": "dismiss-reason" }),
  (reason) => send({ status: "dismissed", reason }, "已忽略"), "dismiss-confirm");
  const button = (text, testid, onclick, primary) => h("button", {
    type: "button", class: `btn btn-small${primary ? " btn-primary" : ""}`, "data-testid": testid, disabled: !canAct,
    title: canAct ? null : "只能处理今天的跟进", onclick,
  }, text);
  const box = h("div", { class: "followup-actions" },
    button("完成", "followup-done", () => send({ status: "done" }, "已完成"), true),
    button("稍后", "followup-snooze", snooze),
    button("忽略", "followup-dismiss", dismiss),
    extra);
  return box;
}

// ----------------------------------------------------------------------------------- tasks

function taskState(task) {
  const now = Date.now();
  if (Date.parse(task.starts) > now) return ["未开始", "na"];
  if (Date.parse(task.deadline) <= now) return ["已结束", "na"];
  return ["进行中", "good"];
}

async function renderTasks(view, query, isCurrent) {
  const offset = Number(query.get("offset")) || 0;
  const results = h("div", { class: "results" }, loadingBox());
  append(view, h("div", { class: "title-bar" }, h("h2", null, "任务"),
    h("a", { class: "btn btn-primary", href: "#/tasks/new", "data-testid": "task-new" }, "新建任务")), results);
  const data = await api("/v1/tasks", { params: { limit: PAGE_SIZE, offset } });
  if (!isCurrent()) return;
  const items = data.items || [];
  if (!items.length) {
    replaceChildren(results, emptyBox("还没有任务。点「新建任务」给顾客群发一条话术。"));
    return;
  }
  replaceChildren(results,
    h("div", { class: "result-bar" }, h("span", { "data-testid": "result-count" }, `共 ${fmtInt(data.total)} 个任务`)),
    h("table", { class: "table", "data-testid": "task-table" },
      h("thead", null, h("tr", null, h("th", null, "任务"), h("th", null, "状态"), h("th", null, "门店"),
        h("th", null, "开始"), h("th", null, "截止"), h("th", null, "话术"))),
      h("tbody", null, items.map(taskRow))),
    pager(data.total || items.length, offset, PAGE_SIZE, (next) => `#/tasks${next ? `?offset=${next}` : ""}`));
}

function taskRow(task) {
  const href = `#/tasks/${encodeURIComponent(task.task_id)}`;
  const [text, tone] = taskState(task);
  const row = h("tr", { class: "clickable", "data-testid": "task-row", "data-id": task.task_id },
    h("td", null, h("a", { href, "data-testid": "task-link" }, task.title)),
    h("td", null, h("span", { class: `score score-${tone}` }, text)),
    h("td", null, (task.segment.stores || []).join("、") || "全部门店"),
    h("td", null, fmtTime(task.starts)), h("td", null, fmtDeadline(task.deadline)),
    h("td", { class: "script-text" }, task.variants[0], task.variants.length > 1 ? ` 等 ${task.variants.length} 条` : ""));
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) location.hash = href;
  });
  return row;
}

async function renderTask(view, id, isCurrent) {
  append(view, loadingBox());
  const task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
  if (!isCurrent()) return;
  const overall = task.summary.overall;
  const segment = task.segment;
  replaceChildren(view,
    h("div", { class: "detail-head" },
      h("a", { class: "back", href: "#/tasks", "data-testid": "back" }, "← 返回任务"),
      h("h2", { "data-testid": "task-title" }, task.title),
      h("p", { class: "muted" }, `${fmtTime(task.starts)} 至 ${fmtDeadline(task.deadline)} · `,
        `${(segment.stores || []).join("、") || "全部门店"} · ${segmentText(segment)}`)),
    h("div", { class: "tiles", "data-testid": "task-summary" },
      tile("目标顾客", fmtInt(overall.targeted), null, "task-targeted"),
      tile("已执行", fmtInt(overall.executed), null, "task-executed"),
      tile("执行率", fmtPct(overall.execution_rate), null, "task-rate"),
      tile("顾客回复", fmtInt(overall.replied), "执行后 48 小时内"),
      tile("成交", fmtInt(overall.converted), "执行后 72 小时内付款"),
      tile("成交率", fmtPct(overall.conversion_rate), "成交 / 已执行")),
    h("section", { class: "card" }, h("h3", null, "话术"),
      h("ol", { class: "variants" }, task.variants.map((v) => h("li", null, v)))),
    h("div", { class: "charts" },
      h("section", { class: "card" }, h("h3", null, "按导购"), progressTable(task.summary.guides, "导购", "task-guides")),
      h("section", { class: "card" }, h("h3", null, "按门店"), progressTable(task.summary.stores, "门店", "task-stores"))),
    h("section", { class: "card" }, h("h3", null, "目标顾客"), targetTable(task.targets || [])));
}

function segmentText(segment) {
  const parts = [];
  if ((segment.asked_about || []).length) parts.push(`问过 ${segment.asked_about.join("、")}`);
  if (segment.within_days !== null && segment.within_days !== undefined) parts.push(`${segment.within_days} 天内`);
  if (segment.bought === true) parts.push("已购买");
  if (segment.bought === false) parts.push("未购买");
  if ((segment.stages || []).length) parts.push(segment.stages.map((s) => STAGE_NAMES[s] || s).join("、"));
  if ((segment.guides || []).length) parts.push(`导购 ${segment.guides.join("、")}`);
  return parts.length ? parts.join(" · ") : "全部顾客";
}

/** Per guide or store: targets, executed with a progress bar, replies, conversions. */
function progressTable(groups, noun, testid) {
  const rows = Object.entries(groups || {});
  if (!rows.length) return emptyBox("没有目标顾客。");
  return h("table", { class: "table", "data-testid": testid },
    h("thead", null, h("tr", null, h("th", null, noun), h("th", { class: "num" }, "目标"),
      h("th", { class: "num" }, "已执行"), h("th", null, "执行率"), h("th", { class: "num" }, "回复"),
      h("th", { class: "num" }, "成交"))),
    h("tbody", null, rows.map(([id, c]) => {
      const fill = h("div", { class: `bar-fill bar-${c.execution_rate >= 0.8 ? "good" : c.execution_rate >= 0.5 ? "fair" : "poor"}` });
      fill.style.width = `${Math.round((c.execution_rate || 0) * 100)}%`;
      return h("tr", { "data-testid": "progress-row", "data-id": id },
        h("td", null, id === "-" ? "未知" : id), h("td", { class: "num" }, fmtInt(c.targeted)),
        h("td", { class: "num" }, fmtInt(c.executed)),
        h("td", { class: "progress-cell" }, h("div", { class: "bar" }, fill), fmtPct(c.execution_rate)),
        h("td", { class: "num" }, fmtInt(c.replied)), h("td", { class: "num" }, fmtInt(c.converted)));
    })));
}

function targetTable(targets) {
  if (!targets.length) return emptyBox("这个任务在你的范围内没有目标顾客。");
  const yes = (value, text) => (value ? h("span", { class: "yes" }, text) : h("span", { class: "no" }, "—"));
  return h("table", { class: "table", "data-testid": "target-table" },
    h("thead", null, h("tr", null, h("th", null, "顾客"), h("th", null, "导购"), h("th", null, "门店"),
      h("th", null, "状态"), h("th", null, "发送时间"), h("th", null, "发送内容"), h("th", null, "回复"),
      h("th", null, "成交"))),
    h("tbody", null, targets.map((t) => h("tr", { "data-testid": "target-row", "data-customer": t.customer_id },
      h("td", null, t.customer_id), h("td", null, t.guide_id || "—"), h("td", null, t.store_id || "—"),
      h("td", { "data-testid": "target-status" }, t.executed
        ? h("span", { class: "chip chip-good" }, "已执行") : h("span", { class: "chip chip-na" }, "未执行")),
      h("td", null, fmtTime(t.executed_at)),
      h("td", { class: "script-text" }, t.conversation_id && t.message
        ? h("a", { href: `#/conversations/${encodeURIComponent(t.conversation_id)}` }, t.message) : "—"),
      h("td", null, yes(t.replied, "已回复")), h("td", null, yes(t.converted, "已成交"))))));
}

// ----------------------------------------------------------------------------- task form

const STAGE_CHOICES = Object.entries(STAGE_NAMES);

/** The form a supervisor (for its stores) or an admin (any store) creates a task with. */
function renderTaskForm(view) {
  const today = chinaToday();
  const me = state.me;
  const status = h("div", { class: "form-status", "data-testid": "task-form-error", role: "alert" });
  const checks = (name, options, testid) => h("span", { class: "checks", "data-testid": testid },
    options.map(([value, text]) => h("label", null, h("input", { type: "checkbox", name, value }), text)));
  const stores = me.role === "admin"
    ? h("input", { name: "stores", placeholder: "留空为全部门店，多个用逗号分隔", "data-testid": "task-stores" })
    : checks("stores", (me.stores || []).map((id) => [id, id]), "task-stores");
  const form = h("form", { class: "task-form card", "data-testid": "task-form", onsubmit: (event) => {
    event.preventDefault();
    submitTask(form, status);
  } },
  field("任务标题", h("input", { name: "title", required: true, maxlength: 200, "data-testid": "task-title-input" })),
  field("话术（每行一条，最多 5 条）", h("textarea", { name: "variants", rows: 3, required: true, "data-testid": "task-variants" })),
  h("fieldset", null, h("legend", null, "目标顾客"),
    field("问过的商品（多个用逗号分隔）", h("input", { name: "asked_about", placeholder: "如：羽绒服，大衣", "data-testid": "task-asked" })),
    field("最近多少天内", h("input", { name: "within_days", type: "number", min: 0, max: 3660, class: "narrow",
      "data-testid": "task-within" })),
    field("是否购买", h("select", { name: "bought", "data-testid": "task-bought" },
      [["", "不限"], ["false", "未购买"], ["true", "已购买"]].map(([value, text]) => h("option", { value }, text)))),
    field("阶段（不选为不限）", checks("stages", STAGE_CHOICES, "task-stages")),
    field(me.role === "admin" ? "门店" : "门店（不选为全部）", stores)),
  h("div", { class: "range" },
    field("开始", h("input", { name: "starts", type: "date", value: today, required: true, "data-testid": "task-starts" })),
    field("截止（含当天）", h("input", { name: "deadline", type: "date", value: addDays(today, 7), required: true,
      "data-testid": "task-deadline" }))),
  status,
  h("div", { class: "filter-actions" },
    h("a", { class: "btn", href: "#/tasks" }, "取消"),
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "task-submit" }, "创建任务")));
  append(view, h("div", { class: "detail-head" }, h("a", { class: "back", href: "#/tasks" }, "← 返回任务"),
    h("h2", null, "新建任务")), form);
}

const splitList = (text) => String(text || "").split(/[,，、\s]+/).map((x) => x.trim()).filter(Boolean);

/** The POST /v1/tasks body from the form's fields. */
function taskBody(form) {
  const data = new FormData(form);
  const segment = {
    asked_about: splitList(data.get("asked_about")),
    stages: data.getAll("stages"),
    stores: data.getAll("stores").flatMap(splitList),
  };
  if (data.get("within_days") !== "") segment.within_days = Number(data.get("within_days"));
  if (data.get("bought")) segment.bought = data.get("bought") === "true";
  return {
    title: String(data.get("title")).trim(),
    variants: String(data.get("variants")).split("\n").map((v) => v.trim()).filter(Boolean),
    segment,
    starts: data.get("starts"),
    deadline: data.get("deadline"),
  };
}

async function submitTask(form, status) {
  const button = form.querySelector("[type=submit]");
  const body = taskBody(form);
  if (!body.variants.length || body.variants.length > 5) {
    status.textContent = "请填写 1 到 5 条话术，每行一条。";
    return;
  }
  button.disabled = true;
  status.textContent = "正在创建…";
  try {
    const task = await api("/v1/tasks", { method: "POST", body });
    toast(`任务「${task.title}」已创建`);
    location.hash = `#/tasks/${encodeURIComponent(task.task_id)}`;
  } catch (err) {
    status.textContent = `创建失败：${err.message}`;
    button.disabled = false;
  }
}
