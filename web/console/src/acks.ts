// Acknowledgements arriving live (``alert.acknowledged`` on the city feed): another operator's
// acknowledgement or note shows in every open console at once, not at the next totals poll.
import type { AckEntry, EventRow, Payload } from "./types";

export const ACK_EVENT = "alert.acknowledged";

/** The history entry an ``alert.acknowledged`` event stands for. */
export function ackEntry(p: Payload): AckEntry {
  return {
    id: p.entry ?? 0,
    action: p.action ?? "ack",
    username: p.username ?? "",
    note: p.note ?? "",
    ts: p.ts,
  };
}

/** ``history`` with ``entry`` in it once (the API's answer and the feed both bring it). */
export function mergeHistory(history: AckEntry[], entry: AckEntry): AckEntry[] {
  if (history.some((h) => h.id === entry.id)) return history;
  return [...history, entry].sort((a, b) => a.id - b.id);
}

/** ``rows`` with the alerts of ``acks`` marked acknowledged (the first acknowledgement wins). */
export function markAcked(rows: EventRow[], acks: Payload[]): EventRow[] {
  const first = new Map<string, Payload>();
  for (const a of acks) if (a.action === "ack" && a.alert_id && !first.has(a.alert_id)) first.set(a.alert_id, a);
  if (first.size === 0) return rows;
  return rows.map((r) => {
    const a = first.get(r.id);
    return a && !r.acked_by ? { ...r, acked_by: a.username ?? "", acked_at: a.ts } : r;
  });
}
