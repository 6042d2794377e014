import { describe, expect, it } from "vitest";
import { ackEntry, markAcked, mergeHistory } from "../src/acks";
import type { EventRow, Payload } from "../src/types";
import { rowOf } from "../src/views/Alerts";

const ack = (alert: string, entry: number, action: "ack" | "note", username = "ana"): Payload => ({
  id: `ack-${alert}-${entry}`,
  type: "alert.acknowledged",
  city_id: 1,
  camera_id: 1,
  ts: new Date(Date.UTC(2026, 11, 3, 12, 0, entry)).toISOString(),
  alert_id: alert,
  action,
  entry,
  username,
  note: action === "note" ? "mais uma" : "viatura 12",
});

const alert = (id: string): EventRow =>
  rowOf({ id, type: "alert.triggered", city_id: 1, camera_id: 1, ts: "2026-12-03T11:00:00Z" });

describe("live acknowledgements", () => {
  it("mark only the acknowledged alerts, the first acknowledgement's user and time", () => {
    const rows = [alert("a"), alert("b")];
    const out = markAcked(rows, [ack("a", 1, "ack", "ana"), ack("a", 2, "note", "bia")]);
    expect(out[0]).toMatchObject({ id: "a", acked_by: "ana", acked_at: ack("a", 1, "ack").ts });
    expect(out[1]).toBe(rows[1]);
    const again = markAcked(out, [ack("a", 3, "ack", "caio")]); // already acknowledged: kept
    expect(again[0]?.acked_by).toBe("ana");
    expect(markAcked(rows, [ack("a", 2, "note")])).toBe(rows);
  });

  it("add each history entry once, in order, whoever brought it first", () => {
    const first = ackEntry(ack("a", 1, "ack"));
    const note = ackEntry(ack("a", 2, "note", "bia"));
    expect(mergeHistory([first], first)).toEqual([first]);
    expect(mergeHistory([note], first)).toEqual([first, note]);
    expect(note).toMatchObject({ id: 2, action: "note", username: "bia", note: "mais uma" });
  });
});
