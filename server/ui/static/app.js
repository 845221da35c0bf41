/*
 * 销售助手 · 主管看板 (supervisor dashboard).
 *
 * One page, no build step, no dependencies: it signs in with an API key, then reads and writes
 * the /v1 API of the same origin. Views are chosen by the URL hash (#/conversations,
 * #/conversations/<id>, #/guides, #/guides/<id>, #/stores/<id>, #/scripts, and crm.js's
 * #/followups and #/tasks) so the server needs no routes for them and the back button works. Every element is built with DOM calls and textContent, never
 * innerHTML: conversation text is customer-typed and must not become markup. The page's
 * Content-Security-Policy forbids inline styles in markup, so sizes (score bars) are set through
 * element.style, which the policy allows, and charts are SVG with presentation attributes.
 * Elements that tests drive carry data-testid attributes.
 */
"use strict";

// ------------------------------------------------------------------------------------ labels

const KEY_STORAGE = "copilot.apiKey";
const DASHBOARD_ROLES = ["supervisor", "admin"];
const PAGE_SIZE = 20;
const SCRIPT_PAGE_SIZE = 50;
const BOARD_PAGE_SIZE = 20;

const ROLE_NAMES = { supervisor: "主管", admin: "管理员", guide: "导购" };
const SPEAKER_NAMES = { customer: "顾客", guide: "导购", system: "系统" };
const SEVERITY_NAMES = { high: "高", medium: "中", low: "低" };

// Flag rules and kinds are fixed by the analyzers (timing) and the compliance rules file (kinds);
// the filter accepts either a rule or a kind, so both appear in the select.
const FLAG_NAMES = {
  unanswered: "超时未回复",
  slow_reply: "回复过慢",
  absolute_claim: "绝对化用语",
  efficacy_claim: "功效/医疗宣称",
  private_payment: "私下交易",
  guaranteed_result: "承诺效果",
  data_exposure: "泄露个人信息",
  rude: "不当言辞",
  compliance: "任意合规风险",
  timing: "任意响应问题",
};
const FLAG_FILTER_GROUPS = [
  ["响应", ["timing", "unanswered", "slow_reply"]],
  ["合规", ["compliance", "absolute_claim", "efficacy_claim", "private_payment",
    "guaranteed_result", "data_exposure", "rude"]],
];

const SORTS = [
  ["-started_at", "时间↓（最新在前）"],
  ["started_at", "时间↑（最早在前）"],
  ["-overall", "分数↓（最高在前）"],
  ["overall", "分数↑（最低在前）"],
];
// Lift alone puts a script used once (×1.99 on one sale) above ones with real evidence; its lower
// confidence bound (what the engine ranks by) does not, so the library sorts by it by default.
const SCRIPT_SORTS = [
  ["-lift_lower", "提升下限↓"], ["-lift", "提升倍数↓"], ["-n", "使用次数↓"], ["-acceptance", "采纳率↓"],
];
const SCRIPT_HELP = {
  lower: "提升倍数的保守估计（置信下限）：用得少的话术即使次次成交，下限也低；默认按它排序",
  lift: "相对同意图平均成交率的倍数（点估计；使用次数少时不可靠）",
  n: "用过这条话术的会话数",
};
const SCRIPT_STATES = { pinned: "已置顶", banned: "已屏蔽" };

const state = {
  me: null,
  // Display names of labels, from /ui/taxonomy.json; an id without a name is shown as itself.
  names: { intents: {}, actions: {}, dimensions: {} },
  guides: null, // a promise of the leaderboard, for the guide filter and the team average
  lastListHash: "#/conversations",
  renderSeq: 0,
};

function labelName(kind, id) {
  if (id === null || id === undefined) return "—";
  const entry = state.names[kind] && state.names[kind][id];
  return entry ? entry.name : id;
}

function labelDefinition(kind, id) {
  const entry = state.names[kind] && state.names[kind][id];
  return entry ? entry.definition : "";
}

const flagName = (rule) => FLAG_NAMES[rule] || rule;

// Every dimension scores high when the guide did well. Bundles and reports made before the
// taxonomy renamed compliance 合规表现 still call it 合规风险, and 「合规风险 99.5」 read as very
// risky: the dashboard shows the current name for them too.
const DIMENSION_RENAMES = { 合规风险: "合规表现" };
const DIMENSION_HELP = "各维度满分 100，越高越好";

/** A quality dimension's name: the one stored with the score, else the taxonomy's. */
function dimensionName(id, stored) {
  const name = stored || labelName("dimensions", id);
  return DIMENSION_RENAMES[name] || name;
}

/** A scorecard reason that starts with a dimension and its score ("合规风险 100: …"), renamed. */
function renameReason(text) {
  const match = /^(\S+)( \d)/.exec(text);
  return match && DIMENSION_RENAMES[match[1]] ? DIMENSION_RENAMES[match[1]] + text.slice(match[1].length) : text;
}

function dimensionTitle(id) {
  const definition = labelDefinition("dimensions", id);
  return definition ? `${definition}（越高越好）` : DIMENSION_HELP;
}

// ------------------------------------------------------------------------------- DOM helpers

/** h("div", {class: "x", "data-testid": "y", onclick: fn}, child, ...): an element. */
function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const loadingBox = (text) => h("p", { class: "loading", "data-testid": "loading" }, text || "加载中…");
const emptyBox = (text) => h("p", { class: "empty", "data-testid": "empty" }, text);

function errorBox(err) {
  const status = err && err.status ? `（${err.status}）` : "";
  return h("div", { class: "error", "data-testid": "error", role: "alert" },
    h("strong", null, `请求失败${status}：`), err && err.message ? err.message : String(err));
}

let toastTimer = null;
function toast(text) {
  let el = document.getElementById("toast");
  if (!el) {
    el = h("div", { id: "toast", class: "toast", "data-testid": "toast", role: "status" });
    document.body.append(el);
  }
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 2500);
}

// -------------------------------------------------------------------------------- formatting

function band(score) {
  if (score === null || score === undefined) return "na";
  if (score >= 80) return "good";
  if (score >= 60) return "fair";
  return "poor";
}

const fmtScore = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(1));
const fmtPct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
const fmtLift = (x) => (x === null || x === undefined ? "—" : `×${Number(x).toFixed(2)}`);
/** A mean to two decimals without trailing zeros: 1.368 -> "1.37", 0.5 -> "0.5". */
const fmtAverage = (x) => (x === null || x === undefined ? "—" : String(Number(Number(x).toFixed(2))));
const fmtInt = (x) => (x === null || x === undefined ? "—" : Number(x).toLocaleString("zh-CN"));

/** An ISO day or time's date as zh-CN writes it: "2026/03/04". */
const fmtDate = (iso) => String(iso).slice(0, 10).replaceAll("-", "/");

/** The wall-clock time as written (the conversation's own zone, usually China time), with the
 * date as zh-CN writes it: "2026/03/04 13:16". */
function fmtTime(iso, withDate = true) {
  if (!iso) return "—";
  const text = String(iso).replace("T", " ");
  return withDate ? fmtDate(text) + text.slice(10, 16) : text.slice(11, 16);
}

function fmtSeconds(sec) {
  if (sec === null || sec === undefined) return "—";
  if (sec < 60) return `${Math.round(sec)} 秒`;
  if (sec < 3600) return `${(sec / 60).toFixed(1)} 分钟`;
  return `${(sec / 3600).toFixed(1)} 小时`;
}

function scoreBadge(score, testid) {
  return h("span", { class: `score score-${band(score)}`, "data-testid": testid || "score" },
    fmtScore(score));
}

function flagChip(rule, count) {
  const kind = ["unanswered", "slow_reply", "timing"].includes(rule) ? "timing" : "compliance";
  return h("span", { class: `chip chip-${kind}`, "data-testid": "flag-chip", "data-rule": rule },
    flagName(rule), count > 1 ? ` ×${count}` : null);
}

function countBy(items) {
  const counts = new Map();
  for (const item of items) counts.set(item, (counts.get(item) || 0) + 1);
  return counts;
}

// ------------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const getKey = () => sessionStorage.getItem(KEY_STORAGE);

/**
 * Calls the API with the signed-in key and returns the parsed JSON. Errors become ApiError with
 * the server's own message (the API answers {"error": {"status", "message"}}). A 401 means the
 * key was revoked or mistyped: the session ends and the sign-in screen says why.
 */
async function api(path, { method = "GET", params = null, body = undefined, key = null } = {}) {
  let url = path;
  if (params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") query.set(name, value);
    }
    const text = query.toString();
    if (text) url += `?${text}`;
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${key || getKey() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `无法连接服务器（${err.message}）`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error && data.error.message)
      || (data && typeof data.detail === "string" && data.detail)
      || (data && data.detail && JSON.stringify(data.detail))
      || text || response.statusText;
    if (response.status === 401 && !key) signOut("登录已失效（密钥无效或已被撤销），请重新登录。");
    throw new ApiError(response.status, message);
  }
  return data;
}

async function loadNames() {
  try {
    const response = await fetch("/ui/taxonomy.json");
    if (response.ok) state.names = await response.json();
  } catch (err) {
    // Names are a nicety: without them labels show as their ids.
  }
}

/**
 * The leaderboard, fetched once per session (the promise is cached, so views that ask at the
 * same time share one request); feeds the guide filter and the team average. Optional: on an
 * error it is empty and the views do without.
 */
function guides() {
  if (state.guides === null) {
    state.guides = api("/v1/guides").then((data) => data.items || [], () => []);
  }
  return state.guides;
}

// ----------------------------------------------------------------------- session and routing

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.me = null;
  state.guides = null;
  renderSignIn(message);
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query || "") };
}

function setNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === section);
  }
}

/**
 * Renders the view of the current hash. Views load asynchronously; a view that finishes after
 * the user already moved on must not draw over the newer one, hence the sequence number.
 */
async function route() {
  const seq = ++state.renderSeq;
  const main = document.getElementById("main");
  if (!getKey()) {
    renderSignIn();
    return;
  }
  if (!state.me) {
    replaceChildren(main, loadingBox("正在验证密钥…"));
    try {
      state.me = await verifyKey(getKey());
    } catch (err) {
      signOut(err.message);
      return;
    }
  }
  showChrome();
  const { parts, query } = parseHash();
  const view = h("div", { class: "view" });
  const isCurrent = () => seq === state.renderSeq;
  replaceChildren(main, view);
  const section = parts[0] || "conversations";
  // A store's scorecard is reached from the leaderboard, so its tab stays lit.
  setNav(section === "stores" ? "guides" : section);
  try {
    if (section === "conversations" && parts[1]) await renderConversation(view, parts[1], query, isCurrent);
    else if (section === "guides" && parts[1]) await renderScorecard(view, "guides", parts[1], query, isCurrent);
    else if (section === "stores" && parts[1]) await renderScorecard(view, "stores", parts[1], query, isCurrent);
    else if (section === "guides") await renderLeaderboard(view, query, isCurrent);
    else if (section === "scripts") await renderScripts(view, query, isCurrent);
    else if (section === "followups") await renderFollowups(view, query, isCurrent);
    else if (section === "tasks" && parts[1] === "new") renderTaskForm(view);
    else if (section === "tasks" && parts[1]) await renderTask(view, parts[1], isCurrent);
    else if (section === "tasks") await renderTasks(view, query, isCurrent);
    else await renderConversations(view, query, isCurrent);
  } catch (err) {
    if (isCurrent() && getKey()) replaceChildren(view, errorBox(err));
  }
}

/** Resolves to /v1/me for a key the dashboard accepts, else throws with a message in Chinese. */
async function verifyKey(key) {
  let me;
  try {
    me = await api("/v1/me", { key });
  } catch (err) {
    if (err.status === 401) throw new ApiError(401, "密钥无效或已被撤销，请检查后重新输入。");
    throw err;
  }
  if (!DASHBOARD_ROLES.includes(me.role)) {
    const role = ROLE_NAMES[me.role] || me.role;
    throw new ApiError(403, `该密钥的角色是「${role}」，看板仅供主管或管理员使用。请使用主管密钥登录。`);
  }
  return me;
}

function showChrome() {
  document.getElementById("topbar").hidden = false;
  const me = state.me;
  const scope = me.role === "admin" ? "全部门店" : `门店 ${(me.stores || []).join("、")}`;
  replaceChildren(document.getElementById("whoami"), `${ROLE_NAMES[me.role] || me.role} · ${scope}`);
}

// ---------------------------------------------------------------------------------- sign in

function renderSignIn(message) {
  document.getElementById("topbar").hidden = true;
  const input = h("input", {
    id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "cpk_…", "data-testid": "signin-key",
  });
  const status = h("div", { class: "signin-status", "data-testid": "signin-error", role: "alert" },
    message || "");
  const button = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "signin-submit" },
    "登录");
  const form = h("form", { class: "signin-card", "data-testid": "signin-form", onsubmit: submit },
    h("h1", null, "销售助手 · 主管看板"),
    h("p", { class: "muted" }, "粘贴主管或管理员的 API 密钥登录。密钥只保存在本标签页，关闭即清除。"),
    h("label", { for: "api-key" }, "API 密钥"), input, status, button);
  replaceChildren(document.getElementById("main"), h("div", { class: "signin" }, form));
  input.focus();

  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    status.textContent = "正在验证…";
    try {
      state.me = await verifyKey(key);
      sessionStorage.setItem(KEY_STORAGE, key);
      status.textContent = "";
      if (!location.hash || location.hash === "#/" || location.hash === "#") {
        location.hash = "#/conversations"; // the hashchange listener renders it
      } else {
        route();
      }
    } catch (err) {
      status.textContent = err.message;
      button.disabled = false;
    }
  }
}

// ---------------------------------------------------------------------- conversation list

const LIST_FILTERS = ["guide_id", "store_id", "min_score", "max_score", "flag", "since", "until"];

function listHash(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `#/conversations${text ? `?${text}` : ""}`;
}

function readListQuery(query) {
  const params = {};
  for (const name of [...LIST_FILTERS, "sort", "offset"]) params[name] = query.get(name) || "";
  params.sort = params.sort || "-started_at";
  return params;
}

async function renderConversations(view, query, isCurrent) {
  const params = readListQuery(query);
  state.lastListHash = location.hash || "#/conversations";
  const results = h("div", { class: "results" }, loadingBox());
  append(view, h("h2", null, "会话列表"), filterForm(params), results);
  fillGuideOptions();

  const offset = Number(params.offset) || 0;
  const data = await api("/v1/conversations", {
    params: { ...pick(params, LIST_FILTERS), sort: params.sort, limit: PAGE_SIZE, offset },
  });
  if (!isCurrent()) return;
  if (!data.items.length) {
    replaceChildren(results, emptyBox(data.total ? "这一页没有会话。" : "没有符合条件的会话，试试放宽筛选条件。"));
    return;
  }
  replaceChildren(results,
    h("div", { class: "result-bar" },
      h("span", { "data-testid": "result-count" }, `共 ${fmtInt(data.total)} 条会话`)),
    conversationTable(data.items, params),
    pager(data.total, offset, PAGE_SIZE, (next) => listHash({ ...params, offset: next || "" })));
}

function pick(obj, names) {
  return Object.fromEntries(names.map((name) => [name, obj[name]]));
}

/** The store filter: a supervisor can only see their stores, so it offers exactly those; an
 * admin types any store id. */
function storeControl(value, testid) {
  const me = state.me;
  return me.role === "admin"
    ? h("input", { name: "store_id", value, placeholder: "全部", "data-testid": testid })
    : h("select", { name: "store_id", "data-testid": testid },
      h("option", { value: "" }, "全部门店"),
      (me.stores || []).map((id) => h("option", { value: id, selected: id === value }, id)));
}

const field = (label, control) => h("label", { class: "field" }, h("span", null, label), control);

function filterForm(params) {
  const store = storeControl(params.store_id, "filter-store");
  const flag = h("select", { name: "flag", "data-testid": "filter-flag" },
    h("option", { value: "" }, "全部"),
    FLAG_FILTER_GROUPS.map(([group, rules]) => h("optgroup", { label: group },
      rules.map((rule) => h("option", { value: rule, selected: rule === params.flag }, flagName(rule))))));
  const sort = h("select", { name: "sort", "data-testid": "sort" },
    SORTS.map(([value, text]) => h("option", { value, selected: value === params.sort }, text)));
  const number = (name, placeholder) => h("input", {
    name, type: "number", min: 0, max: 100, step: 1, value: params[name], placeholder,
    class: "narrow", "data-testid": `filter-${name.replace("_score", "")}`,
  });
  const date = (name) => h("input", { name, type: "date", value: params[name], "data-testid": `filter-${name}` });

  const form = h("form", { class: "filters", "data-testid": "filters", onsubmit: apply },
    field("导购", h("input", {
      name: "guide_id", value: params.guide_id, list: "guide-options", placeholder: "全部",
      autocomplete: "off", "data-testid": "filter-guide",
    })),
    h("datalist", { id: "guide-options" }),
    field("门店", store),
    field("分数范围", h("span", { class: "range" }, number("min_score", "最低"), "–", number("max_score", "最高"))),
    field("标记", flag),
    field("日期", h("span", { class: "range" }, date("since"), "至", date("until"))),
    field("排序", sort),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-testid": "filter-apply" }, "筛选"),
      h("button", { type: "button", class: "btn", "data-testid": "filter-reset",
        onclick: () => { location.hash = "#/conversations"; } }, "重置")));
  // Changing the sort applies at once; the other fields wait for 筛选 so typing does not refetch.
  sort.addEventListener("change", () => form.requestSubmit());
  return form;

  function apply(event) {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    location.hash = listHash({ ...pick(values, LIST_FILTERS), sort: values.sort });
  }
}

async function fillGuideOptions() {
  const items = await guides();
  const list = document.getElementById("guide-options");
  if (list) replaceChildren(list, items.map((g) => h("option", { value: g.guide_id })));
}

function conversationTable(items, params) {
  // Clicking a sortable header toggles between descending and ascending on that column.
  const sortHeader = (column, text) => {
    const active = params.sort.replace("-", "") === column;
    const next = active && params.sort.startsWith("-") ? column : `-${column}`;
    const arrow = active ? (params.sort.startsWith("-") ? " ↓" : " ↑") : "";
    return h("th", { class: "sortable" },
      h("a", { href: listHash({ ...params, sort: next, offset: "" }), "data-testid": `sort-${column}` },
        text, arrow));
  };
  return h("table", { class: "table", "data-testid": "conversation-table" },
    h("thead", null, h("tr", null,
      h("th", null, "会话 · 顾客最后一句"), h("th", null, "商品"), h("th", null, "导购"), h("th", null, "门店"),
      sortHeader("started_at", "开始时间"), h("th", { class: "num" }, "消息数"),
      sortHeader("overall", "综合分"), h("th", null, "成交"), h("th", { class: "num" }, "赢单概率"),
      h("th", null, "标记"))),
    h("tbody", null, items.map(conversationRow)));
}

function conversationRow(item) {
  const href = `#/conversations/${encodeURIComponent(item.conversation_id)}`;
  const flags = [...countBy(item.flags || [])].map(([rule, n]) => flagChip(rule, n));
  const row = h("tr", { class: "clickable", "data-testid": "conversation-row", "data-id": item.conversation_id },
    h("td", { class: "conversation-cell" },
      h("a", { href, "data-testid": "conversation-link" }, item.conversation_id),
      h("div", { class: "excerpt muted", "data-testid": "cell-last-words", title: item.last_customer_text || "" },
        item.last_customer_text ? `顾客：${item.last_customer_text}` : "顾客还没有发言")),
    h("td", { "data-testid": "cell-product" },
      item.product ? h("span", { class: "chip chip-product" }, item.product) : h("span", { class: "muted" }, "—")),
    h("td", { "data-testid": "cell-guide" }, item.guide_id || "—"),
    h("td", { "data-testid": "cell-store" }, item.store_id || "—"),
    h("td", { "data-testid": "cell-started" }, fmtTime(item.started_at)),
    h("td", { class: "num" }, fmtInt(item.n_messages)),
    h("td", null, scoreBadge(item.overall, "cell-score")),
    h("td", null, convertedText(item.converted)),
    h("td", { class: "num" }, fmtPct(item.win_probability)),
    // The chips wrap in a box of their own: a flex <td> would lose its table-cell height.
    h("td", { "data-testid": "cell-flags" },
      h("div", { class: "chips" }, flags.length ? flags : h("span", { class: "muted" }, "无"))));
  // The whole row opens the conversation; the link inside stays for keyboard and middle-click.
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) location.hash = href;
  });
  return row;
}

function convertedText(converted) {
  if (converted === true) return h("span", { class: "yes" }, "已成交");
  if (converted === false) return h("span", { class: "no" }, "未成交");
  return "—";
}

function pager(total, offset, size, hashFor) {
  const pages = Math.max(1, Math.ceil(total / size));
  const page = Math.floor(offset / size) + 1;
  const link = (text, target, enabled, testid) => (enabled
    ? h("a", { class: "btn", href: hashFor(target), "data-testid": testid }, text)
    : h("span", { class: "btn disabled", "data-testid": testid, "aria-disabled": "true" }, text));
  return h("div", { class: "pager" },
    link("上一页", Math.max(0, offset - size), page > 1, "page-prev"),
    h("span", { "data-testid": "page-info" }, `第 ${page} / ${pages} 页`),
    link("下一页", offset + size, page < pages, "page-next"));
}

// --------------------------------------------------------------------- conversation detail

/** A conversation; ?m=<index> (a profile fact's link from another conversation) highlights
 * that message once drawn. The customer's profile (crm.js) loads beside it on its own. */
async function renderConversation(view, id, query, isCurrent) {
  append(view, loadingBox());
  const data = await api(`/v1/conversations/${encodeURIComponent(id)}`);
  if (!isCurrent()) return;
  const { conversation, report } = data;
  const coaching = new Map((data.coaching || []).map((c) => [c.message_index, c]));
  const evidence = evidenceByMessage(report);
  const flags = flagsByMessage(report);
  const labels = new Map((report.messages || []).map((m) => [m.index, m]));

  const chat = h("div", { class: "chat", "data-testid": "chat" },
    conversation.messages.map((message, index) => [
      messageView(message, index, labels.get(index), flags.get(index) || [], evidence.get(index) || []),
      coaching.has(index) ? coachingCard(coaching.get(index)) : null,
    ]));
  replaceChildren(view,
    conversationHeader(conversation, report),
    h("div", { class: "detail detail-profile" },
      customerPanel(conversation.customer_id, chat, conversation.conversation_id, isCurrent),
      chat, scorePanel(report, chat)));
  const cited = query.get("m");
  if (cited !== null && cited !== "") highlightMessage(chat, Number(cited), null);
}

function conversationHeader(conversation, report) {
  const guide = conversation.guide_id
    ? h("a", { href: `#/guides/${encodeURIComponent(conversation.guide_id)}` }, conversation.guide_id)
    : "—";
  const amount = report.order_amount ? `（¥${report.order_amount}）` : "";
  return h("div", { class: "detail-head" },
    h("a", { class: "back", href: state.lastListHash, "data-testid": "back" }, "← 返回列表"),
    h("h2", { "data-testid": "conversation-id" }, `会话 ${conversation.conversation_id}`),
    h("dl", { class: "facts" },
      fact("导购", guide), fact("门店", conversation.store_id || "—"),
      fact("渠道", conversation.channel || "—"),
      fact("时间", timeSpan(report.started_at, report.ended_at)),
      fact("结果", [convertedText(report.converted), amount]),
      fact("赢单概率", fmtPct(report.win_probability)),
      fact("模型", report.bundle || "—")));
}

/** "2026-03-04 13:16 – 14:02", with the end's date only when the conversation ran past midnight. */
function timeSpan(start, end) {
  if (!start || !end) return fmtTime(start || end);
  const sameDay = String(start).slice(0, 10) === String(end).slice(0, 10);
  return `${fmtTime(start)} – ${fmtTime(end, !sameDay)}`;
}

const fact = (name, value) => h("div", { class: "fact" }, h("dt", null, name), h("dd", null, value));

/** message index -> [{dimension, name, reason, points}], every dimension's evidence. */
function evidenceByMessage(report) {
  const out = new Map();
  for (const [dim, entry] of Object.entries(report.dimensions || {})) {
    for (const item of entry.evidence || []) {
      if (item.message_index === null || item.message_index === undefined) continue;
      const list = out.get(item.message_index) || [];
      list.push({ ...item, dimension: dim, name: dimensionName(dim, entry.name) });
      out.set(item.message_index, list);
    }
  }
  return out;
}

function flagsByMessage(report) {
  const out = new Map();
  for (const flag of report.flags || []) {
    const list = out.get(flag.message_index) || [];
    list.push(flag);
    out.set(flag.message_index, list);
  }
  return out;
}

function messageView(message, index, label, flags, evidence) {
  const role = message.role in SPEAKER_NAMES ? message.role : "system";
  const penalties = evidence.filter((e) => e.points < 0);
  const classes = ["msg", `msg-${role}`];
  // Messages the score deducted points for are marked from the start, so a supervisor sees
  // where the conversation went wrong without clicking anything.
  if (penalties.length) classes.push("evidence-negative");
  if (flags.length) classes.push("flagged");
  return h("div", {
    class: classes.join(" "), id: `msg-${index}`, "data-testid": "message", "data-index": index,
    "data-role": role,
  },
  h("div", { class: "msg-meta" },
    h("span", { class: "speaker" }, SPEAKER_NAMES[role]), h("span", null, fmtTime(message.ts, false)),
    h("span", { class: "muted" }, `#${index}`)),
  h("div", { class: "bubble", "data-testid": "message-text" }, markedText(message.text || "", flags)),
  h("div", { class: "msg-tags" },
    messageTag(role, label),
    flags.map((f) => h("span", {
      class: `chip chip-${f.kind === "timing" ? "timing" : "compliance"}`, "data-testid": "message-flag",
      "data-rule": f.rule, title: f.explanation || "",
    }, flagName(f.rule), f.severity ? ` · ${SEVERITY_NAMES[f.severity] || f.severity}` : "")),
    penalties.map((e) => h("span", { class: "chip chip-penalty", "data-testid": "penalty", title: e.reason },
      `${e.name} ${e.points}`))),
  flags.filter((f) => f.explanation).map((f) => h("div", { class: "flag-note" },
    `${flagName(f.rule)}：${f.explanation}`)));
}

/** The intent (customer) or action (guide) tag with its confidence; every message gets one. */
function messageTag(role, label) {
  let text;
  let title = "";
  if (role === "system") {
    text = "系统消息";
  } else if (label && (label.intent || label.action)) {
    const kind = label.intent ? "intents" : "actions";
    const id = label.intent || label.action;
    text = `${label.intent ? "意图" : "动作"}：${labelName(kind, id)}`;
    if (label.confidence !== null && label.confidence !== undefined) text += ` · ${fmtPct(label.confidence)}`;
    title = labelDefinition(kind, id);
  } else {
    text = role === "customer" ? "意图：未识别" : "动作：未识别";
  }
  return h("span", { class: `tag tag-${role}`, "data-testid": "message-tag", title }, text);
}

/**
 * The message text with each compliance hit wrapped in <mark>. Offsets count Unicode code
 * points (as Python does), so the text is split with Array.from rather than indexed as UTF-16,
 * which would shift every span after an emoji. Overlapping spans keep the earlier one.
 */
function markedText(text, flags) {
  const chars = Array.from(text);
  const spans = flags
    .filter((f) => Number.isInteger(f.start) && Number.isInteger(f.end) && f.end > f.start)
    .map((f) => ({ start: Math.max(0, f.start), end: Math.min(chars.length, f.end), flag: f }))
    .sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const span of spans) {
    if (span.start < at || span.start >= chars.length) continue;
    if (span.start > at) out.push(chars.slice(at, span.start).join(""));
    out.push(h("mark", { class: "flag-span", "data-testid": "flag-span", "data-rule": span.flag.rule,
      title: span.flag.explanation || flagName(span.flag.rule) }, chars.slice(span.start, span.end).join("")));
    at = span.end;
  }
  if (at < chars.length) out.push(chars.slice(at).join(""));
  return out;
}

function coachingCard(item) {
  const suggestion = item.suggestion || {};
  return h("div", { class: "coach-card", "data-testid": "coaching", "data-index": item.message_index },
    h("div", { class: "coach-title" }, "建议话术", h("span", { class: "muted" }, ` · 针对 #${item.message_index}`)),
    item.reason ? h("div", { class: "coach-reason" }, item.reason) : null,
    suggestion.text
      ? h("div", { class: "coach-text", "data-testid": "coaching-text" }, suggestion.text)
      : h("div", { class: "muted" }, "引擎没有找到合适的话术。"),
    suggestion.text ? h("div", { class: "coach-meta" },
      `动作：${labelName("actions", suggestion.action)}`,
      ` · 提升 ${fmtLift(suggestion.lift)}`, ` · 样本 ${fmtInt(suggestion.n)}`,
      suggestion.reason ? ` · ${suggestion.reason}` : "") : null);
}

function scorePanel(report, chat) {
  const dims = Object.entries(report.dimensions || {});
  const timing = report.timing || {};
  return h("aside", { class: "panel score-panel", "data-testid": "score-panel" },
    h("div", { class: "overall" },
      h("div", { class: "muted" }, "综合分"), scoreBadge(report.overall, "overall-score")),
    h("h3", { title: DIMENSION_HELP }, "维度评分", h("span", { class: "muted h-note" }, "（满分 100，越高越好）")),
    dims.length ? dims.map(([id, entry]) => dimensionBlock(id, entry, chat)) : emptyBox("没有维度评分。"),
    h("h3", null, "风险标记"),
    (report.flags || []).length
      ? h("ul", { class: "evidence-list" }, report.flags.map((f) => evidenceItem(chat, f.message_index,
        `${flagName(f.rule)}：${f.excerpt || f.explanation || ""}`, null, "flag-item")))
      : emptyBox("没有风险标记。"),
    h("h3", null, "响应时效"),
    h("dl", { class: "facts facts-compact" },
      fact("首次响应", fmtSeconds(timing.first_response_s)),
      fact("回复中位数", fmtSeconds(timing.median_reply_s)),
      fact("未回复", fmtInt(timing.unanswered)), fact("超时回复", fmtInt(timing.late))));
}

function dimensionBlock(id, entry, chat) {
  const score = entry.score;
  const fill = h("div", { class: `bar-fill bar-${band(score)}` });
  fill.style.width = `${score === null || score === undefined ? 0 : Math.max(0, Math.min(100, score))}%`;
  const evidence = entry.evidence || [];
  return h("section", { class: "dimension", "data-testid": "dimension", "data-dimension": id },
    h("div", { class: "dimension-head" },
      h("span", { class: "dimension-name", title: dimensionTitle(id), "data-testid": "dimension-name" },
        dimensionName(id, entry.name)),
      h("span", { class: `dimension-score score-text-${band(score)}` }, score === null ? "不适用" : fmtScore(score))),
    h("div", { class: "bar" }, fill),
    evidence.length ? h("ul", { class: "evidence-list" },
      evidence.map((e) => evidenceItem(chat, e.message_index, e.reason, e.points, "evidence"))) : null);
}

/** One clickable piece of evidence: hovering previews the cited message, clicking selects it. */
function evidenceItem(chat, index, reason, points, testid) {
  let sign = "";
  if (typeof points === "number") sign = points < 0 ? "neg" : points > 0 ? "pos" : "zero";
  const item = h("li", null, h("button", {
    type: "button", class: `evidence ${sign}`, "data-testid": testid, "data-message-index": index,
  },
  h("span", { class: "evidence-ref" }, `#${index}`),
  h("span", { class: "evidence-reason" }, reason),
  sign ? h("span", { class: "evidence-points" }, points > 0 ? `+${points}` : String(points)) : null));
  const button = item.firstChild;
  button.addEventListener("click", () => highlightMessage(chat, index, button));
  button.addEventListener("mouseenter", () => toggleHover(chat, index, true));
  button.addEventListener("mouseleave", () => toggleHover(chat, index, false));
  return item;
}

function highlightMessage(chat, index, button) {
  for (const el of chat.querySelectorAll(".evidence-highlight")) el.classList.remove("evidence-highlight");
  for (const el of document.querySelectorAll(".evidence.active, .flag-item.active")) el.classList.remove("active");
  const target = chat.querySelector(`#msg-${index}`);
  if (!target) return;
  target.classList.add("evidence-highlight");
  if (button) button.classList.add("active");
  // Smooth scrolling helps the eye follow, unless the user asked the system for less motion.
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
}

function toggleHover(chat, index, on) {
  // A scroll can move an item away from under the pointer without a mouseleave: at most one
  // message is previewed at a time.
  for (const el of chat.querySelectorAll(".evidence-hover")) el.classList.remove("evidence-hover");
  const target = chat.querySelector(`#msg-${index}`);
  if (target) target.classList.toggle("evidence-hover", on);
}

// ---------------------------------------------------------------------------- leaderboard

// The two leaderboards (#/guides and #/guides?by=store) and their scorecards share one view.
const BOARDS = {
  guides: { noun: "导购", measure: "位", id: "guide_id", related: "stores", relatedNoun: "门店", row: "guide-row",
    link: "guide-link", team: "团队平均", home: "#/guides" },
  stores: { noun: "门店", measure: "家", id: "store_id", related: "guides", relatedNoun: "导购", row: "store-row",
    link: "store-link", team: "各店平均", home: "#/guides?by=store" },
};

// What the execution columns count (server/execution_service.py), for the column titles.
const EXECUTION_HELP = {
  followups: "到期日在所选日期内的跟进中，在到期日当天或之前标记「完成」的比例（只计已处理过的跟进）",
  tasks: "时间窗与所选日期重叠的任务中，导购已发出任务话术（或相近说法）的目标顾客比例",
  converted: "导购执行任务后 72 小时内付款的顾客数",
};

async function renderLeaderboard(view, query, isCurrent) {
  const kind = query.get("by") === "store" ? "stores" : "guides";
  const board = BOARDS[kind];
  const params = { since: query.get("since") || "", until: query.get("until") || "" };
  if (kind === "guides") params.store_id = query.get("store_id") || "";
  const results = h("div", { class: "results" }, loadingBox());
  append(view, h("h2", null, "导购排行"), boardTabs(kind), leaderboardFilters(params, kind), results);
  const data = await api(`/v1/${kind}`, { params });
  if (!isCurrent()) return;
  const items = data.items || [];
  if (kind === "guides" && !params.store_id && !params.since && !params.until) state.guides = Promise.resolve(items);
  if (!items.length) {
    replaceChildren(results, emptyBox(`这个范围内还没有${board.noun}的会话。`));
    return;
  }
  // The API ranks everyone at once (ranks and the team average need them all); the page shows
  // BOARD_PAGE_SIZE rows at a time.
  const offset = Math.max(0, Number(query.get("offset")) || 0);
  replaceChildren(results,
    h("div", { class: "result-bar" },
      h("span", { "data-testid": "result-count" }, `共 ${fmtInt(items.length)} ${board.measure}${board.noun}`)),
    boardTable(items.slice(offset, offset + BOARD_PAGE_SIZE), dimensionIds(items), kind),
    pager(items.length, offset, BOARD_PAGE_SIZE, (next) => boardHash(kind, { ...params, offset: next || "" })));
}

function boardTable(items, dims, kind) {
  const board = BOARDS[kind];
  // Many columns: the table scrolls sideways in its box rather than squeeze ids onto two lines.
  return h("div", { class: "table-scroll" }, h("table", { class: "table board", "data-testid": "leaderboard" },
    h("thead", null, h("tr", null,
      h("th", { class: "num" }, "排名"), h("th", null, board.noun), h("th", null, board.relatedNoun),
      h("th", { class: "num" }, "会话"), h("th", null, "综合分"),
      dims.map((d) => h("th", { class: "num dim-col", title: dimensionTitle(d), "data-testid": "dimension-header" },
        dimensionName(d))),
      h("th", { class: "num" }, "转化率"), h("th", { class: "num" }, "标记"), h("th", { class: "num" }, "话术采纳率"),
      h("th", { class: "num exec-col", title: EXECUTION_HELP.followups }, "按时跟进率"),
      h("th", { class: "num exec-col", title: EXECUTION_HELP.tasks }, "任务执行率"),
      h("th", { class: "num exec-col", title: EXECUTION_HELP.converted }, "任务后成交"))),
    h("tbody", null, items.map((item) => boardRow(item, dims, kind)))));
}

/** #/guides with the board's filters (and ?by=store for the stores' board). */
function boardHash(kind, params) {
  const query = new URLSearchParams(kind === "stores" ? { by: "store" } : {});
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `#/guides${text ? `?${text}` : ""}`;
}

function boardTabs(kind) {
  const tab = (target, text, testid) => h("a", {
    href: BOARDS[target].home, class: target === kind ? "tab active" : "tab", "data-testid": testid,
  }, text);
  return h("div", { class: "tabs" }, tab("guides", "按导购", "board-guides"), tab("stores", "按门店", "board-stores"));
}

function leaderboardFilters(params, kind) {
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = boardHash(kind, Object.fromEntries(new FormData(form).entries()));
  } },
  kind === "guides" ? field("门店", storeControl(params.store_id, "board-store")) : null,
  field("日期", h("span", { class: "range" },
    h("input", { name: "since", type: "date", value: params.since, "data-testid": "board-since" }), "至",
    h("input", { name: "until", type: "date", value: params.until, "data-testid": "board-until" }))),
  h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "筛选")));
  return form;
}

function dimensionIds(items) {
  const known = Object.keys(state.names.dimensions || {});
  const seen = new Set(items.flatMap((g) => Object.keys(g.dimensions || {})));
  return [...known.filter((d) => seen.has(d)), ...[...seen].filter((d) => !known.includes(d))];
}

function boardRow(item, dims, kind) {
  const board = BOARDS[kind];
  const id = item[board.id];
  const href = `#/${kind}/${encodeURIComponent(id)}`;
  const execution = item.execution || {};
  const followups = execution.followups || {};
  const tasks = execution.tasks || {};
  const row = h("tr", { class: "clickable", "data-testid": board.row, "data-id": id },
    h("td", { class: "num" }, item.rank ? String(item.rank) : "—"),
    h("td", null, h("a", { href, "data-testid": board.link }, id)),
    h("td", null, (item[board.related] || []).join("、") || "—"),
    h("td", { class: "num" }, fmtInt(item.n)),
    h("td", null, scoreBadge(item.overall)),
    dims.map((d) => {
      const value = (item.dimensions || {})[d];
      return h("td", { class: `num score-text-${band(value)}` }, fmtScore(value));
    }),
    h("td", { class: "num" }, fmtPct(item.conversion_rate)),
    h("td", { class: "num" }, fmtInt(item.flags)),
    h("td", { class: "num" }, fmtPct(item.acceptance_rate)),
    rateCell(followups.on_time_rate, followups.done_on_time, followups.due, "cell-followups"),
    rateCell(tasks.execution_rate, tasks.executed, tasks.targeted, "cell-tasks"),
    h("td", { class: "num", "data-testid": "cell-task-converted" }, fmtInt(tasks.converted)));
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) location.hash = href;
  });
  return row;
}

/** A rate with the counts behind it ("50% 1/2"); "—" when there was nothing to count. */
function rateCell(rate, part, whole, testid) {
  return h("td", { class: "num", "data-testid": testid },
    fmtPct(rate), whole ? h("span", { class: "muted frac" }, ` ${fmtInt(part)}/${fmtInt(whole)}`) : null);
}

// ------------------------------------------------------------------------------ scorecard

/** A guide's (kind "guides") or a store's ("stores") scorecard. */
async function renderScorecard(view, kind, id, query, isCurrent) {
  const board = BOARDS[kind];
  const period = ["day", "week", "month"].includes(query.get("period")) ? query.get("period") : "week";
  const path = `${kind}/${encodeURIComponent(id)}`;
  append(view, loadingBox());
  const [card, team] = await Promise.all([
    api(`/v1/${path}/scorecard`, { params: { period } }),
    kind === "guides" ? guides() : api("/v1/stores").then((data) => data.items || [], () => []),
  ]);
  if (!isCurrent()) return;
  const acceptance = card.acceptance || {};
  const periodSelect = h("select", { "data-testid": "period" },
    [["day", "按天"], ["week", "按周"], ["month", "按月"]].map(([value, text]) =>
      h("option", { value, selected: value === period }, text)));
  periodSelect.addEventListener("change", () => {
    location.hash = `#/${path}?period=${periodSelect.value}`;
  });
  replaceChildren(view,
    h("div", { class: "detail-head" },
      h("a", { class: "back", href: board.home, "data-testid": "back" }, "← 返回排行"),
      h("h2", { "data-testid": "scorecard-title" }, `${board.noun} ${card.id} 的成绩单`),
      h("p", { class: "muted" }, `${board.relatedNoun} ${(card.related || []).join("、") || "—"} · `,
        `${fmtTime(card.first_at)} 至 ${fmtTime(card.last_at)}`)),
    h("div", { class: "tiles", "data-testid": "scorecard" },
      tile("会话数", fmtInt(card.n)),
      tile("综合分", scoreBadge(card.overall, "scorecard-overall")),
      tile("转化率", fmtPct(card.conversion_rate),
        `成交 ${fmtInt(card.n_converted)} / 结果已知 ${fmtInt(card.n_outcomes)} 个会话`, "tile-conversion"),
      tile("平均赢单概率", fmtPct(card.win_probability)),
      tile("风险标记", fmtInt(card.flags && card.flags.total),
        `平均每个会话 ${fmtAverage(card.flags && card.flags.per_conversation)} 个`, "tile-flags"),
      tile("话术采纳率", fmtPct(acceptance.acceptance_rate),
        // edited suggestions count as accepted, as the API's acceptance_rate does
        `展示 ${fmtInt(acceptance.shown)} · 采纳 ${fmtInt((acceptance.accepted || 0) + (acceptance.edited || 0))}`)),
    executionTiles(card.execution || {}),
    h("div", { class: "charts" },
      h("section", { class: "card" },
        h("div", { class: "card-head" }, h("h3", null, "分数趋势"), periodSelect),
        trendChart(card.trend || [], card.trend_slope)),
      h("section", { class: "card" },
        h("h3", { title: DIMENSION_HELP }, "维度画像", h("span", { class: "muted h-note" }, "（越靠外越好）")),
        profileChart(card.dimensions || {}, team, `该${board.noun}`, board.team))),
    flagSummary(card.flags),
    h("div", { class: "charts" },
      h("section", { class: "card" }, h("h3", null, "最佳会话"), conversationRefs(card.best || [], "best-list")),
      h("section", { class: "card" }, h("h3", null, "待改进会话"), conversationRefs(card.worst || [], "worst-list"))));
}

function tile(name, value, note, testid) {
  return h("div", { class: "tile", "data-testid": testid }, h("div", { class: "muted" }, name),
    h("div", { class: "tile-value" }, value), note ? h("div", { class: "tile-note muted" }, note) : null);
}

/** Follow-ups done on time and tasks carried out in the period (the API's execution block). */
function executionTiles(execution) {
  const f = execution.followups || {};
  const t = execution.tasks || {};
  return h("section", { class: "execution", "data-testid": "execution" },
    h("h3", null, "执行情况"),
    h("div", { class: "tiles tiles-3" },
      h("div", { title: EXECUTION_HELP.followups },
        tile("按时跟进率", fmtPct(f.on_time_rate),
          `按时完成 ${fmtInt(f.done_on_time)} / 到期 ${fmtInt(f.due)} · 共完成 ${fmtInt(f.done)}`, "tile-followups")),
      h("div", { title: EXECUTION_HELP.tasks },
        tile("任务执行率", fmtPct(t.execution_rate),
          `已执行 ${fmtInt(t.executed)} / 目标顾客 ${fmtInt(t.targeted)} · ${fmtInt(t.tasks)} 个任务`, "tile-tasks")),
      h("div", { title: EXECUTION_HELP.converted },
        tile("任务后成交", fmtInt(t.converted),
          `执行后成交率 ${fmtPct(t.conversion_rate)} · 回复 ${fmtInt(t.replied)}`, "tile-task-converted"))));
}

function flagSummary(flags) {
  const rules = Object.entries((flags && flags.by_rule) || {});
  return h("section", { class: "card" }, h("h3", null, "标记分布"),
    rules.length ? h("div", { class: "chips" }, rules.map(([rule, n]) => flagChip(rule, n))) : emptyBox("没有标记。"));
}

function conversationRefs(refs, testid) {
  if (!refs.length) return emptyBox("暂无。");
  return h("ul", { class: "refs", "data-testid": testid }, refs.map((ref) => h("li", null,
    scoreBadge(ref.overall),
    h("a", { href: `#/conversations/${encodeURIComponent(ref.conversation_id)}`, "data-testid": "ref-link" },
      ref.conversation_id),
    h("span", { class: "muted" }, ` ${fmtTime(ref.started_at)}`),
    (ref.reasons || []).length
      ? h("ul", { class: "reasons" }, ref.reasons.map((r) => h("li", null, renameReason(r)))) : null)));
}

// --------------------------------------------------------------------------------- charts

/** An SVG that scales to its container's width, with a label for screen readers. */
function chartSvg(width, height, label, testid, ...children) {
  return s("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img", "aria-label": label,
    "data-testid": testid,
  }, children);
}

/**
 * The score trend: one point per period (x by date, so gaps in activity show as gaps), y on the
 * fixed 0-100 scale with the 60 and 80 band lines, so two guides' charts compare at a glance.
 */
function trendChart(trend, slope) {
  const points = trend.filter((p) => p.overall !== null && p.overall !== undefined);
  if (!points.length) return emptyBox("没有可画的趋势（会话缺少时间或分数）。");
  const W = 560, H = 300, left = 40, right = 24, top = 16, bottom = 36;
  const times = points.map((p) => Date.parse(p.period_start));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const x = (t) => (t1 === t0 ? left + (W - left - right) / 2 : left + ((t - t0) / (t1 - t0)) * (W - left - right));
  const y = (v) => top + (1 - v / 100) * (H - top - bottom);
  const grid = [0, 20, 40, 60, 80, 100].map((v) => [
    s("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: v === 60 || v === 80 ? "grid grid-band" : "grid" }),
    s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)),
  ]);
  // Date labels left to right, skipping any that would overlap the one before (periods close in
  // time, or many of them), so the axis stays legible; the last period is always labelled.
  const labels = [];
  let lastX = -Infinity;
  points.forEach((p, i) => {
    const px = x(times[i]);
    const isLast = i === points.length - 1;
    if (px - lastX < 48 && !(isLast && labels.length === 0)) {
      if (!isLast) return;
      labels.pop(); // make room for the last label rather than drop it
    }
    labels.push(s("text", { x: px, y: H - 12, "text-anchor": "middle", class: "axis" }, fmtDate(p.period_start).slice(5)));
    lastX = px;
  });
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(times[i]).toFixed(1)},${y(p.overall).toFixed(1)}`).join(" ");
  const dots = points.map((p, i) => s("circle",
    { cx: x(times[i]), cy: y(p.overall), r: 4, class: `dot dot-${band(p.overall)}` },
    s("title", null, `${fmtDate(p.period_start)} 起 · ${p.n} 条会话 · 平均 ${fmtScore(p.overall)}`)));
  const caption = slope === null || slope === undefined ? "" : `趋势：每期 ${slope > 0 ? "+" : ""}${slope} 分`;
  return h("figure", { class: "chart" },
    chartSvg(W, H, "分数趋势", "trend-chart", grid, labels, s("path", { d: path, class: "line" }), dots),
    caption ? h("figcaption", { class: "muted" }, caption) : null);
}

/**
 * The dimension profile as a radar: one axis per dimension on the 0-100 scale, the guide's means
 * filled, and the team's mean (from the leaderboard) dashed for comparison. A dimension that never
 * applied is drawn at the centre and labelled 不适用.
 */
function profileChart(dimensions, team, who = "该导购", teamName = "团队平均") {
  const ids = Object.keys(dimensions);
  if (ids.length < 3) return dimensionBars(dimensions);
  const W = 500, H = 320, cx = W / 2, cy = H / 2 + 4, R = 105;
  const angle = (i) => -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
  const at = (i, v) => [cx + Math.cos(angle(i)) * R * (v / 100), cy + Math.sin(angle(i)) * R * (v / 100)];
  const polygon = (values) => values.map((v, i) => at(i, v || 0).map((n) => n.toFixed(1)).join(",")).join(" ");
  const rings = [20, 40, 60, 80, 100].map((v) => s("polygon", { points: polygon(ids.map(() => v)), class: "grid" }));
  const axes = ids.map((_, i) => {
    const [x2, y2] = at(i, 100);
    return s("line", { x1: cx, y1: cy, x2, y2, class: "grid" });
  });
  const labels = ids.map((id, i) => {
    const [lx, ly] = at(i, 122);
    const anchor = Math.abs(lx - cx) < 4 ? "middle" : lx > cx ? "start" : "end";
    const mean = dimensions[id].mean;
    return s("text", { x: lx, y: ly + 4, "text-anchor": anchor, class: "axis axis-label" },
      `${dimensionName(id, dimensions[id].name)} ${mean === null ? "不适用" : fmtScore(mean)}`);
  });
  const teamMeans = ids.map((id) => {
    const values = (team || []).map((g) => (g.dimensions || {})[id]).filter((v) => v !== null && v !== undefined);
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  });
  const hasTeam = teamMeans.some((v) => v !== null);
  return h("figure", { class: "chart" },
    chartSvg(W, H, "维度画像", "profile-chart", rings, axes,
      hasTeam ? s("polygon", { points: polygon(teamMeans), class: "radar-team" }) : null,
      s("polygon", { points: polygon(ids.map((id) => dimensions[id].mean)), class: "radar-guide" }),
      ids.map((id, i) => {
        const [px, py] = at(i, dimensions[id].mean || 0);
        return s("circle", { cx: px, cy: py, r: 3, class: "radar-dot" });
      }),
      labels),
    h("figcaption", { class: "legend" },
      h("span", { class: "swatch swatch-guide" }), who,
      hasTeam ? [h("span", { class: "swatch swatch-team" }), teamName] : null));
}

/** Fallback for fewer than three dimensions, where a radar has no area: plain bars. */
function dimensionBars(dimensions) {
  return h("div", { "data-testid": "profile-chart" }, Object.entries(dimensions).map(([id, d]) => {
    const fill = h("div", { class: `bar-fill bar-${band(d.mean)}` });
    fill.style.width = `${d.mean || 0}%`;
    return h("div", { class: "dimension" },
      h("div", { class: "dimension-head" }, h("span", null, dimensionName(id, d.name)),
        h("span", null, fmtScore(d.mean))),
      h("div", { class: "bar" }, fill));
  }));
}

// ------------------------------------------------------------------------------- scripts

async function renderScripts(view, query, isCurrent) {
  const params = {
    action: query.get("action") || "", intent: query.get("intent") || "", state: query.get("state") || "",
    q: query.get("q") || "", sort: query.get("sort") || "-lift_lower", offset: query.get("offset") || "",
  };
  const results = h("div", { class: "results" }, loadingBox());
  append(view, h("h2", null, "话术库"), scriptFilters(params), results);
  const offset = Number(params.offset) || 0;
  const data = await api("/v1/scripts", { params: { ...params, limit: SCRIPT_PAGE_SIZE, offset } });
  if (!isCurrent()) return;
  const items = data.items || [];
  if (!items.length) {
    replaceChildren(results, emptyBox("没有符合条件的话术。"));
    return;
  }
  replaceChildren(results,
    h("div", { class: "result-bar" }, h("span", { "data-testid": "result-count" }, `共 ${fmtInt(data.total)} 条话术`)),
    h("table", { class: "table", "data-testid": "script-table" },
      h("thead", null, h("tr", null,
        h("th", null, "话术"), h("th", null, "动作"), h("th", null, "意图"),
        h("th", { class: "num", title: SCRIPT_HELP.lower }, "提升下限"),
        h("th", { class: "num", title: SCRIPT_HELP.n }, "使用次数"),
        h("th", { class: "num", title: SCRIPT_HELP.lift }, "提升"),
        h("th", { class: "num" }, "成交率"), h("th", { class: "num" }, "展示"), h("th", { class: "num" }, "采纳率"),
        h("th", null, "状态"), h("th", null, "操作"))),
      h("tbody", null, items.map(scriptRow))),
    pager(data.total || items.length, offset, SCRIPT_PAGE_SIZE,
      (next) => scriptsHash({ ...params, offset: next || "" })));
}

function scriptsHash(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `#/scripts${text ? `?${text}` : ""}`;
}

function scriptFilters(params) {
  const named = (kind) => Object.entries(state.names[kind] || {}).map(([id, label]) => [id, label.name]);
  const form = h("form", { class: "filters", "data-testid": "script-filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = scriptsHash(Object.fromEntries(new FormData(form).entries()));
  } },
  h("label", { class: "field" }, h("span", null, "意图"),
    choice("intent", params.intent, named("intents"), "script-filter-intent")),
  h("label", { class: "field" }, h("span", null, "动作"),
    choice("action", params.action, named("actions"), "script-filter-action")),
  h("label", { class: "field" }, h("span", null, "状态"),
    choice("state", params.state, Object.entries(SCRIPT_STATES), "script-filter-state")),
  h("label", { class: "field" }, h("span", null, "搜索"),
    h("input", { name: "q", value: params.q, placeholder: "话术文字", "data-testid": "script-filter-q" })),
  h("label", { class: "field" }, h("span", null, "排序"), h("select", { name: "sort", "data-testid": "script-sort" },
    SCRIPT_SORTS.map(([value, text]) => h("option", { value, selected: value === params.sort }, text)))),
  h("div", { class: "filter-actions" },
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "script-filter-apply" }, "筛选")));
  return form;
}

/** A <select> with a leading 全部 (no filter) and [value, text] options. */
function choice(name, selected, options, testid) {
  return h("select", { name, "data-testid": testid },
    h("option", { value: "" }, "全部"),
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
}

function scriptRow(script) {
  const row = h("tr", { "data-testid": "script-row", "data-script-id": script.script_id });
  fillScriptRow(row, script);
  return row;
}

function fillScriptRow(row, script) {
  const stateChip = h("span", {
    class: script.state ? `chip chip-${script.state}` : "muted",
    "data-testid": "script-state",
    "data-state": script.state || "",
  }, script.state ? SCRIPT_STATES[script.state] || script.state : "正常");
  // A banned script is never served: grey its row so the list reads at a glance.
  row.classList.toggle("row-banned", script.state === "banned");
  row.classList.toggle("row-pinned", script.state === "pinned");
  const button = (text, testid, disabled, action) => h("button", {
    type: "button", class: `btn btn-small ${testid === "ban" ? "btn-danger" : ""}`, "data-testid": testid, disabled,
    onclick: () => changeScriptState(row, script, action),
  }, text);
  replaceChildren(row,
    h("td", { class: "script-text", "data-testid": "script-text" }, script.text),
    h("td", null, labelName("actions", script.action)),
    h("td", null, labelName("intents", script.intent)),
    h("td", { class: "num lift-lower", "data-testid": "script-lift-lower" }, fmtLift(script.lift_lower)),
    h("td", { class: "num", "data-testid": "script-n" }, fmtInt(script.n)),
    h("td", { class: "num muted", "data-testid": "script-lift" }, fmtLift(script.lift)),
    h("td", { class: "num" }, fmtPct(script.rate)),
    h("td", { class: "num" }, fmtInt(script.shown)),
    h("td", { class: "num" }, fmtPct(script.acceptance_rate)),
    h("td", null, stateChip),
    h("td", { class: "actions" },
      button("置顶", "pin", script.state === "pinned", "pinned"),
      button("屏蔽", "ban", script.state === "banned", "banned"),
      button("清除", "clear", !script.state, null)));
}

/** Pins, bans or clears a script, then redraws its row from the state the server confirmed. */
async function changeScriptState(row, script, next) {
  for (const b of row.querySelectorAll("button")) b.disabled = true;
  try {
    const updated = next
      ? await api("/v1/scripts", { method: "POST", body: { script_id: script.script_id, state: next } })
      : await api(`/v1/scripts/${encodeURIComponent(script.script_id)}`, { method: "DELETE" });
    // The API answers with the script as stored; fall back to the requested state if it did not.
    if (updated && updated.script_id === script.script_id) Object.assign(script, updated);
    else script.state = next;
    toast(next ? `话术 #${script.script_id} ${SCRIPT_STATES[next]}` : `话术 #${script.script_id} 已恢复正常`);
  } catch (err) {
    toast(`操作失败：${err.message}`);
  }
  fillScriptRow(row, script);
}

// ---------------------------------------------------------------------------------- boot

async function boot() {
  document.getElementById("signout").addEventListener("click", () => {
    signOut("已退出。");
    history.replaceState(null, "", "#/");
  });
  window.addEventListener("hashchange", route);
  await loadNames();
  route();
}

document.addEventListener("DOMContentLoaded", boot);
