// The alert queue: alert.triggered events of the city, newest first, arriving live; pending
// (unacknowledged) by default, with the true totals from the API; a selected alert opens its
// review beside the queue (below it on a phone). The list is bounded: a burst of alerts can
// not grow the page without limit.
import { useEffect, useState } from "preact/hooks";
import { useLocation } from "wouter-preact";
import { api } from "../api";
import { ACK_EVENT, markAcked } from "../acks";
import { feed } from "../feed";
import { fmtNumber, t, tn } from "../i18n";
import { setSound, soundOn } from "../sound";
import { cameraName, cityQuery, cityId, summary } from "../state";
import type { EventRow, Page, Payload } from "../types";
import { ErrorText, Plate, Spinner, Time } from "../ui";
import { EventDetail } from "./EventDetail";

export const MAX_ROWS = 200; // live rows kept; "load more" may page up to 5x that

/** A live alert as a list row (the API's list rows carry the same fields). */
export function rowOf(p: Payload): EventRow {
  return {
    id: p.id,
    type: p.type,
    city_id: p.city_id,
    camera_id: p.camera_id,
    ts: p.ts,
    plate: p.plate ?? null,
    confidence: p.confidence ?? null,
    payload: p,
    crop_url: p.crop_url ?? null,
    clip_url: null,
    acked_by: null,
    acked_at: null,
  };
}

/** ``rows`` and ``fresh`` as one list, newest first, no duplicates, at most ``max``. */
export function mergeNewest(rows: EventRow[], fresh: EventRow[], max = MAX_ROWS): EventRow[] {
  const known = new Set(rows.map((r) => r.id));
  const add = fresh.filter((r) => !known.has(r.id));
  const time = (r: EventRow) => Date.parse(r.ts);
  // a late event (a replay after a reconnect) goes where its time puts it
  return [...add, ...rows].sort((a, b) => time(b) - time(a)).slice(0, max);
}

function AlertRow({ row, active, isNew }: { row: EventRow; active: boolean; isNew: boolean }) {
  const m = row.payload.match;
  const cls = `alert-row${active ? " active" : ""}${row.acked_by ? " acked" : ""}${isNew ? " fresh" : ""}`;
  return (
    <li class={cls} data-testid="alert-row" data-event={row.id}>
      <a href={`#/alerts/${row.id}`}>
        {row.crop_url ? <img src={row.crop_url} alt="" loading="lazy" /> : <span class="noimg" />}
        <span class="alert-main">
          <Plate plate={row.plate} />
          <small>
            <Time iso={row.ts} /> · {cameraName(row.camera_id)}
          </small>
          {m ? (
            <small class="reason">
              {m.reason || m.pattern}
              {m.priority ? ` · P${m.priority}` : ""}
            </small>
          ) : null}
        </span>
        <span class={`ack-state ${row.acked_by ? "done" : "pending"}`}>
          {row.acked_by ? "✓" : t("alerts.pending")}
        </span>
      </a>
    </li>
  );
}

export function Alerts({ selected }: { selected?: string }) {
  const [pendingOnly, setPendingOnly] = useState(true);
  const [rows, setRows] = useState<EventRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [, navigate] = useLocation();
  const city = cityId.value;

  async function load(after: string | null) {
    const page = await api<Page<EventRow>>("/events", {
      query: {
        type: "alert.triggered",
        acked: pendingOnly ? false : undefined,
        limit: 50,
        cursor: after ?? undefined,
        ...cityQuery(),
      },
    });
    setRows((old) => (after ? [...old, ...page.items].slice(0, MAX_ROWS * 5) : page.items));
    setCursor(page.next_cursor);
  }

  useEffect(() => {
    setLoading(true);
    load(null)
      .then(() => setError(null))
      .catch(setError)
      .finally(() => setLoading(false));
  }, [pendingOnly, city]);

  useEffect(
    () =>
      feed.subscribe(["alert.triggered"], (batch) => {
        const added = batch.map(rowOf);
        setRows((old) => mergeNewest(old, added, Math.max(MAX_ROWS, old.length)));
        setFresh(new Set(added.map((r) => r.id)));
      }),
    [],
  );
  useEffect(() => feed.subscribe([ACK_EVENT], (acks) => setRows((old) => markAcked(old, acks))), []);

  function onAcked(id: string, by: string, at: string) {
    setRows((old) => old.map((r) => (r.id === id ? { ...r, acked_by: by, acked_at: at } : r)));
  }

  const s = summary.value;
  return (
    <section class={`alerts-page${selected ? " with-detail" : ""}`}>
      <div class="queue card">
        <div class="queue-head">
          <h1>{t("alerts.title")}</h1>
          <span class="counts" data-testid="unacked-count">
            {s
              ? s.unacknowledged_capped
                ? t("alerts.countCapped", { n: s.unacknowledged })
                : tn("alerts.count", s.unacknowledged)
              : ""}
            {s ? <small> · {t("alerts.day", { n: s.last_24h })}</small> : null}
          </span>
        </div>
        <div class="toolbar">
          <div class="tabs" role="tablist">
            <button
              type="button"
              role="tab"
              aria-selected={pendingOnly}
              class={pendingOnly ? "active" : ""}
              onClick={() => setPendingOnly(true)}
            >
              {t("alerts.unacked")}
            </button>
            <button
              type="button"
              role="tab"
              aria-selected={!pendingOnly}
              class={!pendingOnly ? "active" : ""}
              onClick={() => setPendingOnly(false)}
            >
              {t("alerts.all")}
            </button>
          </div>
          <label class="check">
            <input
              type="checkbox"
              checked={soundOn.value}
              onChange={(e) => setSound(e.currentTarget.checked)}
            />
            {t("alerts.sound")}
          </label>
        </div>
        {error ? <ErrorText error={error} /> : null}
        {loading && rows.length === 0 ? <Spinner /> : null}
        {!loading && rows.length === 0 ? <p class="empty">{t("alerts.empty")}</p> : null}
        <ol class="alert-list" data-testid="alert-list" aria-live="polite">
          {rows.map((row) => (
            <AlertRow key={row.id} row={row} active={row.id === selected} isNew={fresh.has(row.id)} />
          ))}
        </ol>
        {cursor && rows.length < MAX_ROWS * 5 ? (
          <button type="button" class="more" onClick={() => void load(cursor).catch(setError)}>
            {t("app.loadMore")} ({fmtNumber(rows.length)})
          </button>
        ) : null}
      </div>
      <div class="detail-pane">
        {selected ? (
          <EventDetail id={selected} onAcked={onAcked} onClose={() => navigate("/alerts")} />
        ) : (
          <p class="empty muted">{t("alerts.select")}</p>
        )}
      </div>
    </section>
  );
}
