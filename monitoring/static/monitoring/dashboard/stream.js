// The dashboard channel of the events process, as Server-Sent Events with the admin session (EventSource with
// credentials; the events origin answers with credentialed CORS).
//
// EventSource reconnects by itself after a dropped connection (sending Last-Event-ID, so the server replays what
// was missed or answers `stream-reset`), but gives up for good when an answer is not a stream (the events process
// down, a 503 or 429). Then this opens a new one after a backoff (1 s doubling to 30 s). A new EventSource sends
// no Last-Event-ID, so every open asks the page to re-read what it may have missed (`onResync`): on the first
// open, what changed between the page's first reads and the stream's start; after that, everything.

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

export const STREAM_EVENTS = ["metrics", "risk_event", "position", "state", "alert"];

export class LiveStream {
  constructor(url, { onEvent, onStatus, onResync }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onResync = onResync;
    this.source = null;
    this.opened = 0;
    this.retryMs = FIRST_RETRY_MS;
    this.retryTimer = null;
    this.downSince = null;
  }

  start() {
    this.status("connecting");
    this.open();
  }

  open() {
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    source.addEventListener("stream-open", () => this.opened_());
    source.addEventListener("stream-reset", () => this.onResync("stream-reset"));
    // The credentials the stream was opened with no longer stand (logged out, staff removed): re-reading the state
    // sends a signed-out operator to the login page at once.
    source.addEventListener("stream-closed", () => this.onResync("stream-closed"));
    for (const type of STREAM_EVENTS) {
      source.addEventListener(type, (event) => this.deliver(type, event));
    }
    source.onerror = () => this.failed(source);
  }

  opened_() {
    this.opened += 1;
    this.retryMs = FIRST_RETRY_MS;
    this.downSince = null;
    this.status("live");
    this.onResync(this.opened === 1 ? "opened" : "reconnected");
  }

  deliver(type, event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    this.onEvent(type, data);
  }

  failed(source) {
    if (source !== this.source) return;
    this.downSince = this.downSince || new Date();
    if (source.readyState === EventSource.CONNECTING) {
      this.status("reconnecting");
      return;
    }
    source.close();
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.status("disconnected", delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  status(state, retryInMs = null) {
    this.onStatus({ state, since: this.downSince, retryInMs });
  }
}
