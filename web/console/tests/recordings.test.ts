import { describe, expect, it } from "vitest";
import { locate, spansOf } from "../src/views/Recordings";
import type { Recording } from "../src/types";

const rec = (id: string, start: string, end: string | null, url: string | null = `u/${id}`): Recording => ({
  id,
  camera_id: 1,
  started_at: start,
  ended_at: end,
  url,
  bytes: 1,
});

describe("recording timeline", () => {
  const spans = spansOf(
    [
      rec("b", "2026-12-03T10:01:00Z", "2026-12-03T10:02:00Z"),
      rec("a", "2026-12-03T10:00:00Z", "2026-12-03T10:01:00Z"),
      rec("c", "2026-12-03T10:05:00Z", null, null),
    ],
    Date.parse("2026-12-03T10:06:00Z"),
  );

  it("orders segments and lets an open one end now", () => {
    expect(spans.map((s) => s.rec.id)).toEqual(["a", "b", "c"]);
    expect(spans[2]!.end).toBe(Date.parse("2026-12-03T10:06:00Z"));
  });

  it("finds the segment and the offset of a moment", () => {
    expect(locate(spans, Date.parse("2026-12-03T10:01:30Z"))).toEqual({ index: 1, offset: 30 });
    // a gap plays the next segment from its start; nothing playable after: null
    expect(locate(spans, Date.parse("2026-12-03T09:59:00Z"))).toEqual({ index: 0, offset: 0 });
    expect(locate(spans, Date.parse("2026-12-03T10:03:00Z"))).toBeNull();
  });
});
