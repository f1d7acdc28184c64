// Display formatting only. Amounts arrive as decimal strings; they are parsed to numbers here to be shown, never
// sent back (a write that names an amount sends the string it received).

const MONEY = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const PRICE = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 });
const PERCENT = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function number(text) {
  if (text === null || text === undefined || text === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

export function money(text) {
  const value = number(text);
  return value === null ? "–" : MONEY.format(value);
}

export function signedMoney(text) {
  const value = number(text);
  if (value === null) return "–";
  return (value > 0 ? "+" : "") + MONEY.format(value);
}

export function quantity(text) {
  const value = number(text);
  return value === null ? "–" : PRICE.format(value);
}

export function percent(text) {
  const value = number(text);
  return value === null ? "–" : PERCENT.format(value);
}

export function seconds(total) {
  if (total === null || total === undefined || !Number.isFinite(total)) return "–";
  const value = Math.max(0, Math.round(total));
  if (value < 60) return `${value}s`;
  if (value < 3600) return `${Math.floor(value / 60)}m ${value % 60}s`;
  if (value < 86400) return `${Math.floor(value / 3600)}h ${Math.floor((value % 3600) / 60)}m`;
  return `${Math.floor(value / 86400)}d ${Math.floor((value % 86400) / 3600)}h`;
}

export function ageSeconds(isoTime, now = Date.now()) {
  if (!isoTime) return null;
  const time = Date.parse(isoTime);
  return Number.isFinite(time) ? (now - time) / 1000 : null;
}

export function ago(isoTime, now = Date.now()) {
  const age = ageSeconds(isoTime, now);
  return age === null ? "never" : `${seconds(age)} ago`;
}

export function clock(isoTime) {
  if (!isoTime) return "–";
  const time = new Date(isoTime);
  return time.toLocaleTimeString("en-GB", { hour12: false });
}

export function sign(text) {
  const value = number(text);
  if (value === null || value === 0) return "zero";
  return value > 0 ? "up" : "down";
}
