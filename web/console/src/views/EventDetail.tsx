// One event under review: crop, clip, plate candidates with confidences, camera and time (the
// city's zone, with date), the hotlist match, the related pass or alerts, the acknowledgement
// and its history, and a link into the recording at that moment.
import { useEffect, useState } from "preact/hooks";
import { ACK_EVENT, ackEntry, mergeHistory } from "../acks";
import { api } from "../api";
import { feed } from "../feed";
import { fmtPercent, t, tDynamic } from "../i18n";
import { can, refreshSummary } from "../state";
import type { AckEntry, EventDetail as Detail } from "../types";
import { ErrorText, Field, Plate, Spinner, Time, useAsync } from "../ui";

interface AckAnswer {
  username: string;
  acked_at: string;
  note: string;
  history: AckEntry[];
}

function AckBox({ event, onAcked }: { event: Detail; onAcked: (by: string, at: string) => void }) {
  const [note, setNote] = useState("");
  const [history, setHistory] = useState<AckEntry[]>(event.history);
  const [ackedBy, setAckedBy] = useState(event.acked_by);
  const [ackedAt, setAckedAt] = useState(event.acked_at);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(
    () =>
      feed.subscribe([ACK_EVENT], (acks) => {
        for (const a of acks.filter((x) => x.alert_id === event.id)) {
          setHistory((old) => mergeHistory(old, ackEntry(a)));
          if (a.action === "ack") {
            setAckedBy((old) => old ?? a.username ?? null);
            setAckedAt((old) => old ?? a.ts);
            onAcked(a.username ?? "", a.ts);
          }
        }
      }),
    [event.id],
  );

  async function submit(ev: Event) {
    ev.preventDefault();
    setBusy(true);
    try {
      const ack = await api<AckAnswer>(`/alerts/${event.id}/ack`, { method: "POST", body: { note } });
      setHistory(ack.history);
      setAckedBy(ack.username);
      setAckedAt(ack.acked_at);
      setNote("");
      setError(null);
      onAcked(ack.username, ack.acked_at);
      refreshSummary(0);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="ack" data-testid="ack">
      <h3>{t("ack.title")}</h3>
      <p class={ackedBy ? "ok" : "pending"} data-testid="ack-status">
        {ackedBy ? (
          <>
            {t("alerts.ackedBy", { user: ackedBy, time: "" })}
            <Time iso={ackedAt} />
          </>
        ) : (
          t("ack.noHistory")
        )}
      </p>
      {history.length ? (
        <ol class="history" data-testid="ack-history">
          {history.map((h) => (
            <li key={h.id}>
              <Time iso={h.ts} /> · <b>{h.username}</b> {tDynamic(`ack.action.${h.action}`, h.action)}
              {h.note ? <q>{h.note}</q> : null}
            </li>
          ))}
        </ol>
      ) : null}
      {can("alerts:ack") ? (
        <form onSubmit={submit} class="ack-form">
          <Field label={t("ack.note")}>
            <textarea
              rows={2}
              maxLength={1000}
              placeholder={t("ack.notePlaceholder")}
              value={note}
              onInput={(e) => setNote(e.currentTarget.value)}
              data-testid="ack-note"
            />
          </Field>
          <button type="submit" class="primary" disabled={busy || (!!ackedBy && !note.trim())} data-testid="ack-submit">
            {ackedBy ? t("ack.addNote") : t("ack.submit")}
          </button>
          <ErrorText error={error} />
        </form>
      ) : null}
    </section>
  );
}

const EXPORT_AROUND_S = 30;

/** Footage around the event as one MP4 (POST /cameras/{id}/exports, audited by the server). */
function ExportAround({ camera, ts }: { camera: number; ts: string }) {
  const [state, setState] = useState<"idle" | "busy" | "done">("idle");
  const [url, setUrl] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function run() {
    setState("busy");
    setError(null);
    const at = Date.parse(ts);
    try {
      const res = await api<{ url: string }>(`/cameras/${camera}/exports`, {
        method: "POST",
        body: {
          start: new Date(at - EXPORT_AROUND_S * 1000).toISOString(),
          end: new Date(at + EXPORT_AROUND_S * 1000).toISOString(),
        },
      });
      setUrl(res.url);
      setState("done");
    } catch (err) {
      setError(err);
      setState("idle");
    }
  }
  return (
    <>
      {url ? (
        <a class="button" href={url} download data-testid="export-link">
          {t("rec.exportReady")}
        </a>
      ) : (
        <button type="button" onClick={() => void run()} disabled={state === "busy"} data-testid="export-event">
          {state === "busy" ? t("rec.exporting") : t("event.export")}
        </button>
      )}
      <ErrorText error={error} />
    </>
  );
}

export function EventDetail({
  id,
  onAcked,
  onClose,
}: {
  id: string;
  onAcked?: (id: string, by: string, at: string) => void;
  onClose?: () => void;
}) {
  const { data: ev, error, loading } = useAsync(() => api<Detail>(`/events/${id}`), [id]);
  if (error) return <ErrorText error={error} />;
  if (loading && !ev) return <Spinner />;
  if (!ev) return <p class="empty">{t("event.notFound")}</p>;
  const tz = ev.timezone;
  const isAlert = ev.type === "alert.triggered";
  const recordingHref = `#/recordings?camera=${ev.camera_id}&at=${encodeURIComponent(ev.ts)}`;
  return (
    <article class="event card" data-testid="event-detail" data-event={ev.id}>
      <header class="event-head">
        <div>
          <span class={`type-tag ${isAlert ? "alert" : "pass"}`}>{tDynamic(`type.${ev.type}`, ev.type)}</span>
          <h2>
            <Plate plate={ev.plate} />
          </h2>
        </div>
        {onClose ? (
          <button type="button" class="ghost" onClick={onClose} aria-label={t("app.close")}>
            ✕
          </button>
        ) : null}
      </header>
      <dl class="facts">
        <dt>{t("event.time")}</dt>
        <dd data-testid="event-time">
          <Time iso={ev.ts} tz={tz} />
        </dd>
        <dt>{t("event.camera")}</dt>
        <dd>{ev.camera.name ?? `#${ev.camera_id}`}</dd>
        {ev.confidence !== null ? (
          <>
            <dt>{t("event.confidence")}</dt>
            <dd>{fmtPercent(ev.confidence)}</dd>
          </>
        ) : null}
        {ev.payload.reads ? (
          <>
            <dt>{t("event.reads")}</dt>
            <dd>{ev.payload.reads}</dd>
          </>
        ) : null}
      </dl>
      <div class="media">
        <figure>
          {ev.crop_url ? (
            <img src={ev.crop_url} alt={t("event.crop")} data-testid="event-crop" />
          ) : (
            <div class="noimg big">{ev.crop_missing ? t("event.cropMissing") : t("event.crop")}</div>
          )}
        </figure>
        <figure>
          {ev.clip_url ? (
            <video src={ev.clip_url} controls muted playsInline preload="metadata" data-testid="event-clip" />
          ) : (
            <div class="noimg big">{ev.clip_missing ? t("event.clipMissing") : t("event.noClip")}</div>
          )}
        </figure>
      </div>
      {ev.candidates.length ? (
        <section>
          <h3>{t("event.candidates")}</h3>
          <table class="candidates" data-testid="candidates">
            <tbody>
              {ev.candidates.map((c) => (
                <tr key={c.text}>
                  <td>
                    <Plate plate={c.text} />
                  </td>
                  <td class="num">{fmtPercent(c.confidence)}</td>
                  <td class="bar-cell">
                    <meter min={0} max={1} value={c.confidence} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {ev.match ? (
        <section class="match" data-testid="match">
          <h3>{t("event.match")}</h3>
          <dl class="facts">
            <dt>{t("event.pattern")}</dt>
            <dd>
              <Plate plate={ev.match.pattern} /> ({tDynamic(`hot.kind.${ev.match.kind}`, ev.match.kind)})
            </dd>
            {ev.match.equivalent ? <dd class="muted wide">{t("event.equivalent")}</dd> : null}
            {ev.match.reason ? (
              <>
                <dt>{t("event.reason")}</dt>
                <dd>{ev.match.reason}</dd>
              </>
            ) : null}
            <dt>{t("event.priority")}</dt>
            <dd>{ev.match.priority ?? 0}</dd>
          </dl>
        </section>
      ) : null}
      {ev.pass ? (
        <p>
          {t("event.pass")}: <a href={`#/events/${ev.pass.id}`}><Plate plate={ev.pass.plate} /></a>
        </p>
      ) : null}
      {ev.alerts.length ? (
        <section>
          <h3>{t("event.alerts")}</h3>
          <ul>
            {ev.alerts.map((a) => (
              <li key={a.id}>
                <a href={`#/alerts/${a.id}`}>{a.payload.match?.reason || a.payload.match?.pattern}</a>
                {a.acked_by ? ` ✓ ${a.acked_by}` : ""}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <p class="actions">
        {can("stream") ? (
          ev.recording ? (
            <a class="button" href={recordingHref} data-testid="open-recording">
              {t("event.openRecording")}
            </a>
          ) : (
            <span class="muted">{t("event.noRecording")}</span>
          )
        ) : null}
        {can("stream") && ev.recording ? <ExportAround camera={ev.camera_id} ts={ev.ts} /> : null}
      </p>
      {isAlert ? <AckBox event={ev} onAcked={(by, at) => onAcked?.(ev.id, by, at)} /> : null}
    </article>
  );
}

export function EventPage({ id }: { id: string }) {
  return (
    <section class="event-page">
      <p>
        <button type="button" class="ghost" onClick={() => history.back()}>
          ← {t("app.back")}
        </button>
      </p>
      <EventDetail id={id} />
    </section>
  );
}
