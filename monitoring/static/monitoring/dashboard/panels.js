// Rendering: each panel is rebuilt from the API's JSON with DOM calls (text is always set as text, never parsed
// as HTML). Buttons are created only for the actions the operator's roles allow; the API refuses the others.
import { ago, ageSeconds, clock, money, percent, quantity, seconds, sign, signedMoney } from "./format.js";

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "onClick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function badge(text, kind = text) {
  return el("span", { className: `badge badge-${kind}` }, text);
}

function cell(content, className = null) {
  return el("td", { className }, content);
}

function button(label, action, { danger = false, data = {} } = {}) {
  return el("button", { type: "button", className: danger ? "btn btn-danger" : "btn", dataset: { action, ...data } }, label);
}

// Fill a table body (or a list) with rows, or show its empty message.
export function fill(container, rows, emptyText) {
  const colspan = container.closest("table")?.querySelectorAll("thead th").length || 1;
  if (!rows.length) {
    const empty = container.tagName === "TBODY" ? el("tr", { className: "empty" }, el("td", { colspan }, emptyText)) : el("li", { className: "empty" }, emptyText);
    container.replaceChildren(empty);
    return;
  }
  container.replaceChildren(...rows);
}

function accountLabel(accountId, names) {
  if (accountId === null || accountId === undefined) return "portfolio";
  const name = names.get(accountId);
  return name ? `#${accountId} ${name}` : `#${accountId}`;
}

// An account in a narrow column: its id, and its name cut to the column (whole on hover).
function accountCell(accountId, names) {
  const name = names.get(accountId);
  return el("td", { className: "account", title: name || null }, el("strong", {}, `#${accountId}`), name ? " " : null, name ? el("span", { className: "clip" }, name) : null);
}

function reasonsText(reasons) {
  return (reasons || []).map((reason) => reason.code).join(", ");
}

function reasonsTitle(reasons) {
  return (reasons || []).map((reason) => reason.message).join("\n");
}

function expiresCell(isoTime) {
  return el("td", { className: "num", dataset: { countdown: isoTime || "" } }, countdownText(isoTime));
}

export function countdownText(isoTime, now = Date.now()) {
  const age = ageSeconds(isoTime, now);
  if (age === null) return "–";
  return age >= 0 ? "expired" : `in ${seconds(-age)}`;
}

// ------------------------------------------------------------------------------------------ key figures
export function renderKpis(root, portfolio, accounts) {
  const set = (name, text, tone = null) => {
    const node = root.querySelector(`[data-kpi="${name}"]`);
    node.textContent = text;
    if (tone) node.dataset.tone = tone;
  };
  if (!portfolio) return;
  set("equity", money(portfolio.equity));
  set("equity_sub", `start of day ${money(portfolio.day_start_equity)}`);
  set("daily_pnl", signedMoney(portfolio.daily_pnl), sign(portfolio.daily_pnl));
  set("daily_pnl_sub", `${percent(portfolio.daily_pnl_pct)} of the day's start`);
  set("exposure", money(portfolio.market_exposure));
  set("exposure_sub", `${percent(portfolio.exposure_pct)} of equity`);
  set("drawdown", percent(portfolio.drawdown));
  set("drawdown_sub", `peak ${money(portfolio.peak_equity)}`);
  const positions = portfolio.positions || {};
  set("positions", `${positions.open ?? 0} open · ${positions.approved ?? 0} reserved · ${positions.pending_approval ?? 0} pending`);
  if (accounts) {
    const troubled = (accounts.halted || 0) + (accounts.reducing || 0) + (accounts.stale || 0) + (accounts.past_limit || 0);
    set(
      "accounts",
      `${accounts.active ?? 0} active · ${accounts.stale ?? 0} stale · ${accounts.halted ?? 0} halted · ${accounts.reducing ?? 0} reducing · ${accounts.past_limit ?? 0} past a limit`,
      troubled ? "down" : "zero",
    );
  }
}

// ------------------------------------------------------------------------------------------ accounts
const STATE_ACTIONS = {
  active: [["Halt", "halt", true], ["Reduce", "reduce", false]],
  reducing: [["Halt", "halt", true], ["Resume", "resume", false]],
  halted: [["Reduce", "reduce", false], ["Resume", "resume", false]],
};

function usageBar(account) {
  const worst = account.worst_usage === null ? null : Number(account.worst_usage);
  const status = (account.limits || []).reduce((worstStatus, limit) => {
    const order = { ok: 0, near: 1, breached: 2 };
    return order[limit.status] > order[worstStatus] ? limit.status : worstStatus;
  }, "ok");
  const title = (account.limits || []).map((limit) => `${limit.limit}: ${percent(limit.usage)} (${limit.status})`).join("\n");
  const width = worst === null ? 0 : Math.min(100, Math.max(0, worst * 100));
  const bar = el("span", { className: "usage-fill" });
  bar.style.width = `${width}%`;
  return el(
    "span",
    { className: `usage usage-${status}`, title },
    el("span", { className: "usage-track" }, bar),
    el("span", { className: "usage-text" }, worst === null ? "–" : percent(account.worst_usage)),
  );
}

function heartbeatCell(account) {
  const node = el("td", { className: "num", dataset: { heartbeat: account.last_heartbeat || "" } }, ago(account.last_heartbeat));
  if (account.stale) node.append(" ", badge("stale", "stale"));
  return node;
}

export function accountRow(account, can) {
  const state = account.state;
  const actions = can.halt
    ? (STATE_ACTIONS[state] || []).map(([label, action, danger]) =>
        button(label, action, { danger, data: { accountId: account.id, accountName: account.name } }),
      )
    : [];
  const equity = el("td", { className: "num" }, money(account.equity));
  if (account.equity_hold) equity.append(" ", badge("held", "held"));
  return el(
    "tr",
    { dataset: { accountId: account.id, state, stale: String(Boolean(account.stale)) } },
    el("td", { className: "account", title: account.name }, el("strong", {}, `#${account.id}`), " ", el("span", { className: "clip" }, account.name), el("div", { className: "muted small" }, account.username)),
    cell([badge(state), account.is_active ? null : badge("inactive", "inactive")]),
    equity,
    el("td", { className: `num tone-${sign(account.daily_pnl)}` }, signedMoney(account.daily_pnl), el("div", { className: "muted small" }, percent(account.daily_pnl_pct))),
    el("td", { className: "num" }, money(account.exposure), el("div", { className: "muted small" }, percent(account.exposure_pct))),
    cell(percent(account.drawdown), "num"),
    cell(usageBar(account)),
    cell(account.position_count, "num"),
    heartbeatCell(account),
    cell(actions, "actions"),
  );
}

// ------------------------------------------------------------------------------------------ positions
export function queueRow(position, can, names) {
  const actions = can.approve
    ? [button("Approve", "approve", { data: { positionId: position.id } }), button("Reject", "reject", { danger: true, data: { positionId: position.id } })]
    : [];
  return el(
    "tr",
    { dataset: { positionId: position.id } },
    cell(`#${position.id}`),
    accountCell(position.account_id, names),
    cell([position.symbol, " ", el("span", { className: `side side-${position.side}` }, position.side)]),
    cell(quantity(position.quantity), "num"),
    cell(money(position.notional), "num"),
    // A pending position without failing rules is held for its size: at or above the approval threshold.
    el("td", { className: "reasons", title: reasonsTitle(position.reasons) || null }, reasonsText(position.reasons) || "threshold"),
    expiresCell(position.reservation_expires_at),
    cell(actions, "actions"),
  );
}

export function reservationRow(position, can, names) {
  const actions = can.approve ? [button("Cancel", "cancel", { danger: true, data: { positionId: position.id } })] : [];
  return el(
    "tr",
    { dataset: { positionId: position.id } },
    cell(`#${position.id}`),
    accountCell(position.account_id, names),
    cell([position.symbol, " ", el("span", { className: `side side-${position.side}` }, position.side)]),
    cell(money(position.notional), "num"),
    expiresCell(position.reservation_expires_at),
    cell(actions, "actions"),
  );
}

// ------------------------------------------------------------------------------------------ equity holds
export function holdRow(account, can) {
  const hold = account.equity_hold;
  const actions = can.manage_equity
    ? [button("Confirm", "confirm-equity", { data: { accountId: account.id, accountName: account.name, equity: hold.equity } })]
    : [];
  return el(
    "tr",
    { dataset: { accountId: account.id } },
    el("td", { className: "account", title: account.name }, el("strong", {}, `#${account.id}`), " ", el("span", { className: "clip" }, account.name)),
    cell(money(hold.accepted_equity), "num"),
    cell(money(hold.equity), "num"),
    cell(ago(hold.first_reported_at), "num"),
    cell(actions, "actions"),
  );
}

// ------------------------------------------------------------------------------------------ events, alerts, health
export function riskEventItem(event, names) {
  return el(
    "li",
    { dataset: { eventId: event.id }, className: `severity-${event.severity}` },
    el("span", { className: "time" }, clock(event.created_at)),
    badge(event.severity),
    el("span", { className: "type" }, event.type),
    el("span", { className: "muted" }, accountLabel(event.account_id, names)),
    el("div", { className: "message" }, event.message),
  );
}

export function alertItem(alert, names) {
  return el(
    "li",
    { className: `severity-${alert.severity}`, dataset: { ruleId: alert.rule_id } },
    badge(alert.severity),
    el("strong", {}, alert.rule_name),
    el("span", { className: "muted" }, accountLabel(alert.account_id, names)),
    el("div", { className: "message" }, `${alert.figure} ${alert.comparator} ${Number(alert.threshold)}: now ${alert.value === null ? "–" : Number(alert.value)}, firing since ${clock(alert.fired_at)}`),
  );
}

const GIB = 1024 ** 3;

export function healthItems(health) {
  const items = [];
  for (const [name, component] of Object.entries(health.components || {})) {
    const ok = component.status === "ok";
    items.push(el("li", {}, badge(ok ? "ok" : "down"), el("strong", {}, name), el("span", { className: "muted" }, ok ? `${component.latency_ms} ms` : component.error || "")));
  }
  const host = health.host || {};
  if (host.cpu) {
    const load = host.load ? ` · load ${host.load["1m"]}` : "";
    items.push(el("li", {}, el("strong", {}, "host"), el("span", { className: "muted" }, `cpu ${host.cpu.percent}%${load} · memory ${host.memory.percent}% · disk ${host.disk.percent}% (${(host.disk.free_bytes / GIB).toFixed(1)} GiB free)`)));
  }
  const depth = Object.entries((health.celery || {}).queue_depth || {}).map(([queue, size]) => `${queue} ${size ?? "?"}`);
  items.push(el("li", {}, el("strong", {}, "celery queue"), el("span", { className: "muted" }, depth.join(", ") || "–")));
  const snapshot = health.snapshot;
  items.push(
    el("li", {}, badge(snapshot && !snapshot.stale ? "ok" : "stale"), el("strong", {}, "desk snapshot"), el("span", { className: "muted" }, snapshot ? `${seconds(snapshot.age_seconds)} old, every ${snapshot.interval_seconds}s` : "none yet")),
  );
  // Periodic tasks worth a look: the last run failed, or none finished for three intervals (and a minute).
  for (const task of health.periodic_tasks || []) {
    const finishedAge = ageSeconds(task.last_finished_at);
    const late = task.enabled && task.every_seconds && finishedAge !== null && finishedAge > 3 * task.every_seconds + 60;
    const failed = task.last_outcome && task.last_outcome !== "success";
    if (!late && !failed) continue;
    const detail = failed ? `last run ended ${task.last_outcome}` : `last finished ${ago(task.last_finished_at)}`;
    items.push(el("li", {}, badge(failed ? "failed" : "late", "down"), el("strong", {}, task.name), el("span", { className: "muted" }, detail)));
  }
  return items;
}
