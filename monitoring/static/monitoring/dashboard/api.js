// The JSON API, called with the page's admin session (same origin). Writes carry the CSRF token the page was
// rendered with; every error answer has the API's shape {"error": {"code", "message", "fields"?}}.

const CSRF_TOKEN = document.querySelector('meta[name="csrf-token"]').content;

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || null;
  }

  // The message and each field's complaint, for the operator.
  describe() {
    if (!this.fields) return this.message;
    const details = Object.entries(this.fields).map(([name, problems]) => `${name}: ${[].concat(problems).join(" ")}`);
    return `${this.message} (${details.join("; ")})`;
  }
}

async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRFToken"] = CSRF_TOKEN;
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network_error", `The server did not answer (${error.message}).`);
  }
  const payload = await response.json().catch(() => null);
  if (response.ok) return payload;
  if (response.status === 401 || response.status === 403) {
    if (payload && payload.error && payload.error.code === "not_authenticated") {
      window.location.assign(`/admin/login/?next=${encodeURIComponent(window.location.pathname)}`);
    }
  }
  const error = (payload && payload.error) || {};
  throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`, error.fields);
}

export const getJson = (path) => request("GET", path);
export const postJson = (path, body = {}) => request("POST", path, body);
