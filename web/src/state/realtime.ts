// The WebSocket: `?token=` (the one place a token goes in a URL: API Gateway needs it there), reconnect
// with backoff after any drop, a ping to keep the connection off the 10-minute idle limit, and a
// callback on every (re)open so the app catches up (`GET /sync` from its token; see state/app.ts `catchUp`).

import type { ServerEvent } from "../api/types";
import { backoff } from "./timeline";

export type SocketState = "connecting" | "open" | "reconnecting" | "stopped";

/** Flattens `batch` frames (which may nest) into their events, in order. */
export function flatten(frame: ServerEvent): ServerEvent[] {
  return frame.type === "batch" ? frame.events.flatMap(flatten) : [frame];
}

export class Realtime {
  ws: WebSocket | null = null;
  state: SocketState = "stopped";
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ping: ReturnType<typeof setInterval> | null = null;
  /** Opened connections so far (the first one included). */
  opens = 0;

  constructor(
    private readonly url: string,
    private readonly token: () => Promise<string>,
    private readonly onEvent: (event: ServerEvent) => void,
    private readonly onOpen: (reconnected: boolean) => void,
    private readonly onState: (state: SocketState) => void,
  ) {}

  start() {
    if (this.state !== "stopped") return;
    this.setState("connecting");
    void this.connect();
  }

  stop() {
    this.setState("stopped");
    if (this.timer) clearTimeout(this.timer);
    if (this.ping) clearInterval(this.ping);
    this.timer = null;
    this.ping = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
  }

  send(frame: object): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private setState(state: SocketState) {
    this.state = state;
    this.onState(state);
  }

  private async connect() {
    if (this.state === "stopped") return;
    let token: string;
    try {
      token = await this.token();
    } catch {
      return this.retry();
    }
    if ((this.state as SocketState) === "stopped") return;
    const base = this.url.replace(/\/+$/, "");
    const ws = new WebSocket(`${base}/?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const reconnected = this.opens > 0;
      this.opens += 1;
      this.attempt = 0;
      this.setState("open");
      if (this.ping) clearInterval(this.ping);
      this.ping = setInterval(() => this.send({ action: "ping" }), 5 * 60_000);
      this.onOpen(reconnected);
    };
    ws.onmessage = (message) => {
      if (this.ws !== ws) return;
      let frame: ServerEvent;
      try {
        frame = JSON.parse(String(message.data)) as ServerEvent;
      } catch {
        return;
      }
      for (const event of flatten(frame)) this.onEvent(event);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.ping) clearInterval(this.ping);
      this.ping = null;
      this.retry();
    };
  }

  private retry() {
    if (this.state === "stopped") return;
    this.setState("reconnecting");
    const delay = backoff(this.attempt++);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
