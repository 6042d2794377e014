// The live feed: one EventSource on /stream/events for the whole console. It resumes after any
// reconnect from the last stream id it saw (the browser's own retry sends Last-Event-ID; a new
// EventSource, needed when the stream token expired, passes ?last_event_id=), drops an event it
// already delivered, and hands events to subscribers in batches, so a burst costs one render.
import { signal } from "@preact/signals";
import { api, withQuery } from "./api";
import type { Payload } from "./types";

export const TYPES = [
  "alert.triggered",
  "alert.acknowledged",
  "lpr.detected",
  "camera.online",
  "camera.offline",
  "camera.stalled",
] as const;
export type ConnState = "connecting" | "live" | "offline";
export const connection = signal<ConnState>("connecting");

const BATCH_MS = 100;
const SEEN_MAX = 5000;

/** A set that forgets its oldest members beyond ``max`` (ids already delivered). */
export class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly max: number) {}

  /** True if ``id`` is new (and remember it). */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }
}

type Handler = (events: Payload[]) => void;

interface Subscription {
  types: ReadonlySet<string>;
  fn: Handler;
}

export class Feed {
  private source: EventSource | null = null;
  private lastId = "";
  private readonly seen = new RecentIds(SEEN_MAX);
  private readonly subs = new Set<Subscription>();
  private queue: Payload[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private running = false;
  private cityId: number | null = null;

  /** Deliver events of ``types`` to ``fn``; returns the unsubscribe function. */
  subscribe(types: readonly string[], fn: Handler): () => void {
    const sub = { types: new Set(types), fn };
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  /** Connect for ``cityId`` (admins; ``null`` = the user's own city). */
  start(cityId: number | null): void {
    if (this.running && cityId === this.cityId) return;
    if (cityId !== this.cityId) this.lastId = ""; // another city's stream ids mean nothing here
    this.cityId = cityId;
    this.running = true;
    this.close();
    void this.open();
  }

  stop(): void {
    this.running = false;
    this.close();
    clearTimeout(this.retryTimer);
    connection.value = "connecting";
  }

  /** Feed an event as if it came from the stream (tests, and the SSE handler). */
  receive(event: Payload, streamId = ""): void {
    if (streamId) this.lastId = streamId;
    if (!event.id || !this.seen.add(event.id)) return;
    this.queue.push(event);
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  private flush(): void {
    this.flushTimer = undefined;
    const batch = this.queue;
    this.queue = [];
    for (const sub of this.subs) {
      const mine = batch.filter((e) => sub.types.has(e.type));
      if (mine.length) sub.fn(mine);
    }
  }

  private close(): void {
    this.source?.close();
    this.source = null;
  }

  private async open(): Promise<void> {
    connection.value = "connecting";
    let token: string;
    try {
      token = (await api<{ token: string }>("/auth/stream-token", { method: "POST" })).token;
    } catch {
      this.retry();
      return;
    }
    if (!this.running) return;
    const url = withQuery("/stream/events", {
      types: TYPES.join(","),
      token,
      city_id: this.cityId ?? undefined,
      last_event_id: this.lastId || undefined,
    });
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      this.retries = 0;
      connection.value = "live";
    };
    const onMessage = (msg: MessageEvent<string>) => {
      try {
        this.receive(JSON.parse(msg.data) as Payload, msg.lastEventId);
      } catch {
        /* not an event */
      }
    };
    for (const type of TYPES) source.addEventListener(type, onMessage as EventListener);
    source.onerror = () => {
      if (source !== this.source) return;
      connection.value = "offline";
      if (source.readyState === EventSource.CLOSED) {
        this.close();
        this.retry(); // refused (expired stream token): a new token, resume from lastId
      }
    };
  }

  private retry(): void {
    if (!this.running) return;
    connection.value = "offline";
    const delay = Math.min(15_000, 1000 * 2 ** this.retries);
    this.retries += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }
}

export const feed = new Feed();
