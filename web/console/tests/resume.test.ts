import { afterEach, describe, expect, it, vi } from "vitest";
import { Feed } from "../src/feed";
import type { Payload } from "../src/types";

type Listener = (msg: { data: string; lastEventId: string }) => void;

class FakeEventSource {
  static CLOSED = 2;
  static opened: FakeEventSource[] = [];
  readyState = 1;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  readonly listeners = new Map<string, Listener>();
  constructor(readonly url: string) {
    FakeEventSource.opened.push(this);
  }
  addEventListener(type: string, fn: Listener): void {
    this.listeners.set(type, fn);
  }
  close(): void {
    this.readyState = FakeEventSource.CLOSED;
  }
  emit(event: Payload, id: string): void {
    this.listeners.get(event.type)?.({ data: JSON.stringify(event), lastEventId: id });
  }
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("feed resume", () => {
  it("reopens with a new stream token from the last id it saw, and drops the replayed event", async () => {
    vi.useFakeTimers();
    let n = 0;
    vi.stubGlobal("EventSource", FakeEventSource);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ token: `tok${++n}` }), { status: 200 })),
    );
    const feed = new Feed();
    const got: string[] = [];
    feed.subscribe(["alert.triggered"], (batch) => got.push(...batch.map((e) => e.id)));
    feed.start(7);
    await vi.advanceTimersByTimeAsync(0);
    const first = FakeEventSource.opened.at(-1)!;
    expect(first.url).toContain("token=tok1");
    expect(first.url).toContain("city_id=7");
    expect(first.url).not.toContain("last_event_id");
    const alert = { id: "a1", type: "alert.triggered", city_id: 7, camera_id: 1, ts: "2026-12-03T12:00:00Z" };
    first.emit(alert, "1700000000000-0");
    first.readyState = FakeEventSource.CLOSED; // the server refused the expired token
    first.onerror?.();
    await vi.advanceTimersByTimeAsync(1500);
    const second = FakeEventSource.opened.at(-1)!;
    expect(second).not.toBe(first);
    expect(second.url).toContain("token=tok2");
    expect(second.url).toContain("last_event_id=1700000000000-0");
    second.emit(alert, "1700000000000-0"); // replayed by the server: not delivered twice
    second.emit({ ...alert, id: "a2" }, "1700000000001-0");
    await vi.advanceTimersByTimeAsync(200);
    expect(got).toEqual(["a1", "a2"]);
    feed.stop();
  });
});
