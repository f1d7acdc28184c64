// The operator page: reads the desk through the JSON API, stays live through the dashboard stream, and sends every
// action through the same API (session + CSRF), after a confirmation dialog.
import { getJson, postJson } from "./api.js";
import { DeskCharts } from "./charts.js";
import { ActionDialog } from "./dialog.js";
import { ago, clock, money, quantity, seconds } from "./format.js";
import * as panels from "./panels.js";
import { LiveStream } from "./stream.js";

const RISK_EVENTS_SHOWN = 25;
const ACCOUNTS_PAGE_SIZE = 25;
const HEALTH_EVERY_MS = 15000;
const POLL_WHILE_DOWN_MS = 10000;

// Run `task` at most once per `delay` ms however often it is asked for (the last request is always honoured).
function coalesce(task, delay) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      task();
    }, delay);
  };
}

const $ = (selector) => document.querySelector(selector);

class Desk {
  constructor() {
    const data = document.body.dataset;
    this.can = { approve: data.canApprove === "true", halt: data.canHalt === "true", manage_equity: data.canManageEquity === "true" };
    this.streamUrl = data.streamUrl;
    this.names = new Map();
    this.accounts = new Map();
    this.queue = new Map();
    this.queueTotal = 0;
    this.reservations = [];
    this.riskEvents = [];
    this.portfolioState = null;
    this.snapshotAt = null;
    this.streamState = "connecting";
    this.accountsQuery = { sort: "-exposure", filter: "", page: 1, count: 0 };
    this.historyHours = 24;
    this.charts = new DeskCharts(document);
    this.dialog = new ActionDialog($("#action-dialog"));
    this.refresh = {
      accounts: coalesce(() => this.loadAccounts(), 2000),
      queue: coalesce(() => this.loadQueue(), 800),
      reservations: coalesce(() => this.loadReservations(), 800),
      holds: coalesce(() => this.loadHolds(), 1500),
      alerts: coalesce(() => this.loadAlerts(), 1000),
      overview: coalesce(() => this.loadOverview(), 1000),
    };
  }

  start() {
    this.wireControls();
    this.stream = new LiveStream(this.streamUrl, {
      onEvent: (type, payload) => this.onEvent(type, payload),
      onStatus: (status) => this.showStream(status),
      onResync: (why) => (why === "opened" ? this.loadLiveLists() : this.loadAll()),
    });
    this.loadAll();
    this.stream.start();
    setInterval(() => this.tick(), 1000);
    setInterval(() => this.loadHealth(), HEALTH_EVERY_MS);
    setInterval(() => {
      if (this.streamState !== "live") this.loadAll();
    }, POLL_WHILE_DOWN_MS);
  }

  loadAll() {
    return Promise.allSettled([
      this.loadOverview(),
      this.loadHistory(),
      this.loadAccounts(),
      this.loadQueue(),
      this.loadReservations(),
      this.loadHolds(),
      this.loadRiskEvents(),
      this.loadAlerts(),
      this.loadHealth(),
    ]);
  }

  // The lists that change only through events (the figures come with every `metrics` event anyway).
  loadLiveLists() {
    return Promise.allSettled([this.loadQueue(), this.loadReservations(), this.loadHolds(), this.loadRiskEvents(), this.loadAlerts()]);
  }

  // Run a load, showing its failure on its panel instead of throwing.
  async guarded(panel, load) {
    const notice = document.querySelector(`[data-notice="${panel}"]`);
    try {
      await load();
      if (notice) notice.textContent = "";
    } catch (error) {
      if (notice) notice.textContent = error.describe ? error.describe() : String(error);
    }
  }

  // ---------------------------------------------------------------------------------------- loads
  loadOverview() {
    return this.guarded("kpis", async () => {
      try {
        const overview = await getJson("/api/dashboard/overview");
        this.snapshotAt = overview.snapshot.computed_at;
        panels.renderKpis($("#kpis"), overview.portfolio, overview.accounts);
        this.setPortfolioState(overview.trading_states.portfolio.state);
      } catch (error) {
        if (error.code !== "snapshot_unavailable") throw error;
        const status = await getJson("/api/risk/status");
        this.setPortfolioState(status.states.portfolio.state);
        throw error;
      }
    });
  }

  loadHistory() {
    return this.guarded("charts", async () => {
      const since = new Date(Date.now() - this.historyHours * 3600 * 1000).toISOString();
      const history = await getJson(`/api/portfolio/history?since=${encodeURIComponent(since)}`);
      this.charts.setHistory(history.points);
    });
  }

  loadAccounts() {
    return this.guarded("accounts", async () => {
      const query = this.accountsQuery;
      const params = new URLSearchParams({ sort: query.sort, page: query.page, page_size: ACCOUNTS_PAGE_SIZE });
      if (query.filter === "stale") params.set("stale", "true");
      else if (query.filter) params.set("state", query.filter);
      const page = await getJson(`/api/accounts?${params}`);
      query.count = page.count;
      this.accounts = new Map(page.results.map((account) => [account.id, account]));
      const known = this.names.size;
      for (const account of page.results) this.names.set(account.id, account.name);
      if (this.names.size !== known) this.renderPositions();
      panels.fill($("#accounts tbody"), page.results.map((account) => panels.accountRow(account, this.can)), "No account matches.");
      const first = page.count ? (query.page - 1) * ACCOUNTS_PAGE_SIZE + 1 : 0;
      $("#accounts-range").textContent = `${first}–${first + page.results.length - Math.min(1, first)} of ${page.count}`;
      $("#accounts-prev").disabled = query.page <= 1;
      $("#accounts-next").disabled = !page.next;
    });
  }

  loadQueue() {
    return this.guarded("queue", async () => {
      const page = await getJson("/api/positions?status=pending_approval&page_size=100");
      this.queue = new Map(page.results.map((position) => [position.id, position]));
      this.queueTotal = page.count;
      this.renderQueue();
    });
  }

  renderQueue() {
    const rows = [...this.queue.values()].sort((a, b) => (a.reservation_expires_at || "").localeCompare(b.reservation_expires_at || "") || a.id - b.id);
    panels.fill($("#queue tbody"), rows.map((position) => panels.queueRow(position, this.can, this.names)), "Nothing waits for approval.");
    $("#queue-count").textContent = String(Math.max(this.queueTotal, this.queue.size));
  }

  loadReservations() {
    return this.guarded("reservations", async () => {
      const page = await getJson("/api/positions?status=approved&page_size=50");
      this.reservations = page.results;
      this.renderReservations();
      $("#reservations-count").textContent = String(page.count);
    });
  }

  renderReservations() {
    const rows = this.reservations.map((position) => panels.reservationRow(position, this.can, this.names));
    panels.fill($("#reservations tbody"), rows, "No unfilled reservation.");
  }

  // Account names arrive with the accounts table: the position panels show them once known.
  renderPositions() {
    this.renderQueue();
    this.renderReservations();
    this.renderRiskEvents();
  }

  loadHolds() {
    return this.guarded("holds", async () => {
      const page = await getJson("/api/accounts?held=true&sort=id&page_size=50");
      panels.fill($("#holds tbody"), page.results.map((account) => panels.holdRow(account, this.can)), "No equity increase is held.");
      $("#holds-count").textContent = String(page.count);
    });
  }

  loadRiskEvents() {
    return this.guarded("risk-events", async () => {
      const page = await getJson(`/api/risk/events?limit=${RISK_EVENTS_SHOWN}`);
      this.riskEvents = page.results;
      this.renderRiskEvents();
    });
  }

  renderRiskEvents() {
    panels.fill($("#risk-events"), this.riskEvents.map((event) => panels.riskEventItem(event, this.names)), "No risk event yet.");
  }

  loadAlerts() {
    return this.guarded("alerts", async () => {
      const rules = await getJson("/api/alerts/rules?enabled=true&page_size=500");
      const firingRules = rules.results.filter((rule) => rule.firing_count > 0);
      const details = await Promise.all(firingRules.map((rule) => getJson(`/api/alerts/rules/${rule.id}`)));
      const firing = details.flatMap((rule) =>
        rule.states.filter((state) => state.status === "firing").map((state) => ({ ...state, rule_id: rule.id, rule_name: rule.name, severity: rule.severity, figure: rule.figure, comparator: rule.comparator, threshold: rule.threshold })),
      );
      const total = firingRules.reduce((sum, rule) => sum + rule.firing_count, 0);
      panels.fill($("#alerts"), firing.map((alert) => panels.alertItem(alert, this.names)), "No alert is firing.");
      $("#alerts-count").textContent = String(total);
      $("#alerts-panel").dataset.firing = String(total);
    });
  }

  loadHealth() {
    return this.guarded("health", async () => {
      const health = await getJson("/api/system/health");
      panels.fill($("#health"), panels.healthItems(health), "–");
      $("#health-panel").dataset.status = health.status;
    });
  }

  // ---------------------------------------------------------------------------------------- live events
  onEvent(type, payload) {
    if (type === "metrics") {
      this.snapshotAt = payload.computed_at;
      panels.renderKpis($("#kpis"), payload.portfolio, payload.accounts);
      $('[data-notice="kpis"]').textContent = "";
      this.charts.addLive(payload.computed_at, payload.portfolio);
      this.refresh.accounts();
      this.refresh.holds();
    } else if (type === "position") {
      this.onPosition(payload);
    } else if (type === "risk_event") {
      this.riskEvents = [payload, ...this.riskEvents.filter((event) => event.id !== payload.id)].slice(0, RISK_EVENTS_SHOWN);
      this.renderRiskEvents();
      if (payload.type.includes("equity")) this.refresh.holds();
    } else if (type === "state") {
      this.onState(payload);
    } else if (type === "alert") {
      this.refresh.alerts();
    }
  }

  onPosition(event) {
    const id = event.position_id;
    if (event.status === "pending_approval") {
      if (!this.queue.has(id)) this.queueTotal += 1;
      this.queue.set(id, { ...this.queue.get(id), ...event, id });
    } else {
      this.dequeue(id);
    }
    this.renderQueue();
    this.refresh.queue();
    this.refresh.reservations();
  }

  onState(state) {
    if (state.account_id === null) {
      this.setPortfolioState(state.state);
    } else {
      const account = this.accounts.get(state.account_id);
      if (account) {
        account.state = state.state;
        const row = document.querySelector(`#accounts tr[data-account-id="${state.account_id}"]`);
        if (row) row.replaceWith(panels.accountRow(account, this.can));
      }
      this.refresh.accounts();
    }
    this.refresh.overview();
  }

  // ---------------------------------------------------------------------------------------- header
  setPortfolioState(state) {
    this.portfolioState = state;
    const node = $("#portfolio-state");
    node.textContent = state.toUpperCase();
    node.className = `badge badge-${state}`;
    document.body.dataset.portfolioState = state;
    const actions = { active: ["halt", "reduce"], reducing: ["halt", "resume"], halted: ["reduce", "resume"] }[state] || [];
    for (const control of document.querySelectorAll("#portfolio-controls [data-action]")) {
      control.hidden = !this.can.halt || !actions.includes(control.dataset.action);
    }
  }

  showStream({ state, since, retryInMs }) {
    this.streamState = state;
    const node = $("#stream-status");
    node.dataset.status = state;
    const text = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", disconnected: "Disconnected" }[state];
    node.textContent = retryInMs ? `${text} (retry in ${seconds(retryInMs / 1000)})` : text;
    const banner = $("#stream-banner");
    banner.hidden = state === "live" || state === "connecting";
    if (!banner.hidden) {
      $("#stream-banner-since").textContent = since ? clock(since.toISOString()) : "now";
    }
  }

  tick() {
    const now = Date.now();
    $("#snapshot-age").textContent = this.snapshotAt ? `desk figures ${ago(this.snapshotAt, now)}` : "no desk figures yet";
    for (const node of document.querySelectorAll("[data-heartbeat]")) {
      node.firstChild.textContent = ago(node.dataset.heartbeat || null, now);
    }
    for (const node of document.querySelectorAll("[data-countdown]")) {
      node.textContent = panels.countdownText(node.dataset.countdown || null, now);
    }
  }

  // ---------------------------------------------------------------------------------------- actions
  wireControls() {
    document.addEventListener("click", (event) => {
      const target = event.target.closest("button[data-action]");
      if (target) this.act(target.dataset.action, target.dataset);
    });
    $("#accounts-sort").addEventListener("change", (event) => this.setAccountsQuery({ sort: event.target.value }));
    $("#accounts-filter").addEventListener("change", (event) => this.setAccountsQuery({ filter: event.target.value }));
    $("#accounts-prev").addEventListener("click", () => this.setAccountsQuery({ page: this.accountsQuery.page - 1 }));
    $("#accounts-next").addEventListener("click", () => this.setAccountsQuery({ page: this.accountsQuery.page + 1 }));
    $("#history-range").addEventListener("change", (event) => {
      this.historyHours = Number(event.target.value);
      this.loadHistory();
    });
  }

  setAccountsQuery(change) {
    Object.assign(this.accountsQuery, { page: 1 }, change);
    this.loadAccounts();
  }

  act(action, data) {
    const handler = {
      approve: () => this.approve(Number(data.positionId)),
      reject: () => this.reject(Number(data.positionId)),
      cancel: () => this.cancel(Number(data.positionId)),
      halt: () => this.changeState("halted", data),
      reduce: () => this.changeState("reducing", data),
      resume: () => this.changeState("active", data),
      "confirm-equity": () => this.confirmEquity(data),
    }[action];
    if (handler) handler();
  }

  positionText(id) {
    const position = this.queue.get(id);
    if (!position) return `Position #${id}.`;
    const account = this.names.get(position.account_id) ? `#${position.account_id} ${this.names.get(position.account_id)}` : `#${position.account_id}`;
    return `${position.symbol} ${position.side} ${quantity(position.quantity)} (notional ${money(position.notional)}) for account ${account}.`;
  }

  approve(id) {
    this.dialog.open({
      title: `Approve position #${id}`,
      text: `${this.positionText(id)} Approval runs every rule again now and can still reject it.`,
      confirmLabel: "Approve",
      run: async (reason) => {
        const position = await postJson(`/api/positions/${id}/approve`, reason ? { reason } : {});
        const codes = position.reasons.map((item) => item.code).join(", ");
        this.flash(position.status === "approved" ? `Position #${id} approved.` : `Position #${id} was ${position.status} when the rules ran again (${codes}).`);
        this.afterPositionChange(id);
      },
    });
  }

  reject(id) {
    this.dialog.open({
      title: `Reject position #${id}`,
      text: `${this.positionText(id)} Its reservation is released; the bot reads the reason.`,
      confirmLabel: "Reject",
      danger: true,
      reasonRequired: true,
      run: async (reason) => {
        await postJson(`/api/positions/${id}/reject`, { reason });
        this.flash(`Position #${id} rejected.`);
        this.afterPositionChange(id);
      },
    });
  }

  cancel(id) {
    this.dialog.open({
      title: `Cancel reservation #${id}`,
      text: "Releases what the position has reserved and not filled; what is filled stays open.",
      confirmLabel: "Cancel the reservation",
      danger: true,
      noReason: true,
      run: async () => {
        const position = await postJson(`/api/positions/${id}/cancel`);
        this.flash(`Position #${id} is now ${position.status}.`);
        this.afterPositionChange(id);
      },
    });
  }

  dequeue(id) {
    if (this.queue.delete(id)) this.queueTotal = Math.max(0, this.queueTotal - 1);
  }

  afterPositionChange(id) {
    this.dequeue(id);
    this.renderQueue();
    this.loadQueue();
    this.loadReservations();
  }

  changeState(mode, data) {
    const accountId = data.accountId ? Number(data.accountId) : null;
    const scope = accountId === null ? "the whole portfolio" : `account #${accountId} ${data.accountName || ""}`.trim();
    const what = {
      halted: ["Halt", `Halt ${scope}: every new check is rejected and every unfilled reservation is cancelled.`],
      reducing: ["Reduce", `Put ${scope} in reduce-only mode: only checks that reduce a position pass.`],
      active: ["Resume", `Resume ${scope}: checks run against the limits again.`],
    }[mode];
    this.dialog.open({
      title: `${what[0]} ${accountId === null ? "the portfolio" : `account #${accountId}`}`,
      text: what[1],
      confirmLabel: what[0],
      danger: mode !== "active",
      reasonRequired: true,
      run: async (reason) => {
        const body = { reason, ...(accountId === null ? {} : { account_id: accountId }) };
        const state = mode === "active" ? await postJson("/api/risk/resume", body) : await postJson("/api/risk/halt", { ...body, mode });
        const cancelled = state.cancelled_position_ids?.length ? `; ${state.cancelled_position_ids.length} reservations cancelled` : "";
        this.flash(`${accountId === null ? "Portfolio" : `Account #${accountId}`} is now ${state.state}${cancelled}.`);
        this.onState(state);
        this.loadReservations();
      },
    });
  }

  confirmEquity(data) {
    const accountId = Number(data.accountId);
    this.dialog.open({
      title: `Confirm held equity of account #${accountId}`,
      text: `Apply the reported equity of ${money(data.equity)} to account #${accountId} ${data.accountName || ""}. A deposit is better recorded as a transfer.`,
      confirmLabel: "Apply the held equity",
      reasonRequired: true,
      run: async (reason) => {
        await postJson(`/api/accounts/${accountId}/equity/confirm`, { reason, equity: data.equity });
        this.flash(`Equity of account #${accountId} confirmed at ${money(data.equity)}.`);
        this.loadHolds();
        this.loadAccounts();
      },
    });
  }

  flash(message) {
    const node = $("#flash");
    node.textContent = message;
    node.hidden = false;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => {
      node.hidden = true;
    }, 8000);
  }
}

new Desk().start();
