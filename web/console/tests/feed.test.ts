import { afterEach, describe, expect, it, vi } from "vitest";
import { Feed, RecentIds } from "../src/feed";
import type { Payload } from "../src/types";
import { MAX_ROWS, mergeNewest, rowOf } from "../src/views/Alerts";

const event = (i: number, type = "alert.triggered"): Payload => ({
  id: `id-${i}`,
  type,
  city_id: 1,
  camera_id: 1,
  ts: new Date(Date.UTC(2026, 11, 3, 12, 0, i)).toISOString(),
  plate: `ABC${String(i).padStart(4, "0")}`,
});

afterEach(() => {
  vi.useRealTimers();
});

describe("feed", () => {
  it("forgets the oldest ids beyond its bound", () => {
    const seen = new RecentIds(3);
    expect(["a", "b", "c"].map((id) => seen.add(id))).toEqual([true, true, true]);
    expect(seen.add("a")).toBe(false);
    expect(seen.add("d")).toBe(true); // "a" is forgotten now
    expect(seen.add("a")).toBe(true);
  });

  it("delivers a burst once, in batches, without duplicates, to the types asked", () => {
    vi.useFakeTimers();
    const feed = new Feed();
    const alerts: Payload[][] = [];
    const passes: Payload[][] = [];
    feed.subscribe(["alert.triggered"], (b) => alerts.push(b));
    feed.subscribe(["lpr.detected"], (b) => passes.push(b));
    for (let i = 0; i < 500; i += 1) feed.receive(event(i, i % 2 ? "lpr.detected" : "alert.triggered"), `1-${i}`);
    for (let i = 0; i < 500; i += 1) feed.receive(event(i)); // replayed after a reconnect
    vi.advanceTimersByTime(150);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toHaveLength(250);
    expect(passes[0]).toHaveLength(250);
    expect(new Set(alerts[0]!.map((e) => e.id)).size).toBe(250);
  });
});

describe("alert queue", () => {
  it("keeps the newest first, no duplicates, and at most the bound", () => {
    let rows = [rowOf(event(1))];
    for (let burst = 0; burst < 10; burst += 1) {
      const fresh = Array.from({ length: 50 }, (_, i) => rowOf(event(burst * 50 + i + 2)));
      rows = mergeNewest(rows, [...fresh, rowOf(event(1))]);
    }
    expect(rows).toHaveLength(MAX_ROWS);
    expect(rows[0]!.id).toBe("id-501");
    expect(new Set(rows.map((r) => r.id)).size).toBe(MAX_ROWS);
    const times = rows.map((r) => r.ts);
    expect([...times].sort().reverse()).toEqual(times);
  });
});
