// Recordings: a camera's day as a 24-hour timeline of recorded segments (the city's zone);
// click the timeline or give a time to play from there, the next segment follows by itself;
// download a range (POST /cameras/{id}/exports, where the server offers it).
import { useEffect, useRef, useState } from "preact/hooks";
import { useSearchParams } from "wouter-preact";
import { api, ApiError } from "../api";
import { fmtTime, t, tn } from "../i18n";
import { cameras, cityQuery, timezone } from "../state";
import { dayBounds, localClock, localDate, zonedToUtc } from "../time";
import type { Page, Recording } from "../types";
import { CameraSelect, ErrorText, Field, Spinner } from "../ui";

const DAY_MS = 24 * 3600 * 1000;
const MAX_PAGES = 10;

export interface Span {
  rec: Recording;
  start: number; // ms since epoch
  end: number;
}

/** Segments as time spans, oldest first (a segment still being written ends "now"). */
export function spansOf(items: Recording[], now = Date.now()): Span[] {
  return items
    .map((rec) => ({
      rec,
      start: Date.parse(rec.started_at),
      end: rec.ended_at ? Date.parse(rec.ended_at) : now,
    }))
    .sort((a, b) => a.start - b.start);
}

/** The span holding instant ``at`` (or the next one after it), with the offset into it. */
export function locate(spans: Span[], at: number): { index: number; offset: number } | null {
  for (let i = 0; i < spans.length; i += 1) {
    const s = spans[i]!;
    if (at < s.end && s.rec.url) return { index: i, offset: Math.max(0, (at - s.start) / 1000) };
  }
  return null;
}

async function daySegments(camera: number, day: string, tz: string): Promise<Recording[]> {
  const [start, end] = dayBounds(day, tz);
  const out: Recording[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const res = await api<Page<Recording>>("/recordings", {
      query: { camera_id: camera, since: start.toISOString(), until: end.toISOString(), limit: 500, cursor, ...cityQuery() },
    });
    out.push(...res.items);
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return out;
}

function Exporter({ camera, day, tz }: { camera: number; day: string; tz: string }) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [state, setState] = useState<"idle" | "busy" | "unavailable">("idle");
  const [url, setUrl] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function run(ev: Event) {
    ev.preventDefault();
    setState("busy");
    setUrl("");
    setError(null);
    try {
      const body = {
        start: zonedToUtc(`${day}T${from}`, tz).toISOString(),
        end: zonedToUtc(`${day}T${to}`, tz).toISOString(),
      };
      const res = await api<{ url?: string; download_url?: string }>(`/cameras/${camera}/exports`, { method: "POST", body });
      setUrl(res.url ?? res.download_url ?? "");
      setState("idle");
    } catch (err) {
      if (err instanceof ApiError && [404, 405, 501].includes(err.status) && !err.detail.includes("camera")) {
        setState("unavailable");
      } else {
        setError(err);
        setState("idle");
      }
    }
  }

  return (
    <form class="exporter" onSubmit={run}>
      <Field label={t("rec.start")}>
        <input type="time" step={1} required value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
      </Field>
      <Field label={t("rec.end")}>
        <input type="time" step={1} required value={to} onInput={(e) => setTo(e.currentTarget.value)} />
      </Field>
      <button type="submit" disabled={state === "busy"}>
        {t("rec.download")}
      </button>
      {state === "busy" ? <span class="muted">{t("rec.exporting")}</span> : null}
      {state === "unavailable" ? <span class="muted">{t("rec.exportUnavailable")}</span> : null}
      {url ? (
        <a href={url} download class="button">
          {t("rec.exportReady")}
        </a>
      ) : null}
      <ErrorText error={error} />
    </form>
  );
}

export function Recordings() {
  const [params, setParams] = useSearchParams();
  const tz = timezone.value;
  const atRaw = params.get("at");
  const atParam = atRaw && !Number.isNaN(Date.parse(atRaw)) ? atRaw : null;
  const camera = Number(params.get("camera") ?? cameras.value[0]?.id ?? 0);
  const day = params.get("day") ?? localDate(atParam ? new Date(atParam) : new Date(), tz);
  const [spans, setSpans] = useState<Span[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [current, setCurrent] = useState<{ index: number; offset: number } | null>(null);
  const [position, setPosition] = useState<number | null>(null);
  const [from, setFrom] = useState("");
  const [gap, setGap] = useState(false);
  const video = useRef<HTMLVideoElement>(null);
  const [dayStart] = dayBounds(day, tz);

  useEffect(() => {
    if (!camera) return;
    setLoading(true);
    setCurrent(null);
    daySegments(camera, day, tz)
      .then((items) => {
        const s = spansOf(items);
        setSpans(s);
        setError(null);
        if (atParam) playAt(Date.parse(atParam), s);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  }, [camera, day, tz]);

  function playAt(at: number, list = spans) {
    const found = locate(list, at);
    setGap(found === null);
    setCurrent(found);
    if (found) setPosition(list[found.index]!.start + found.offset * 1000);
  }

  // load the current segment and seek into it
  useEffect(() => {
    const el = video.current;
    const span = current ? spans[current.index] : undefined;
    if (!el || !span?.rec.url) return;
    const offset = current?.offset ?? 0;
    const seek = () => {
      el.currentTime = Math.min(offset, Number.isFinite(el.duration) ? el.duration : offset);
      void el.play().catch(() => undefined);
    };
    if (el.dataset.rec !== span.rec.id) {
      el.dataset.rec = span.rec.id;
      el.src = span.rec.url;
      el.addEventListener("loadedmetadata", seek, { once: true });
    } else {
      seek();
    }
  }, [current]);

  function onTimeUpdate() {
    const el = video.current;
    const span = current ? spans[current.index] : undefined;
    if (el && span) setPosition(span.start + el.currentTime * 1000);
  }

  function onEnded() {
    if (!current) return;
    const next = spans.findIndex((s, i) => i > current.index && s.rec.url);
    if (next >= 0) setCurrent({ index: next, offset: 0 });
  }

  function onTimelineClick(ev: MouseEvent) {
    const bar = ev.currentTarget as HTMLElement;
    const rect = bar.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    playAt(dayStart.getTime() + frac * DAY_MS);
  }

  const pct = (ms: number) => `${(Math.max(0, Math.min(DAY_MS, ms - dayStart.getTime())) / DAY_MS) * 100}%`;
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    next.set(k, v);
    next.delete("at");
    setParams(next);
  };

  return (
    <section class="recordings-page">
      <h1>{t("rec.title")}</h1>
      <div class="filters card">
        <Field label={t("rec.camera")}>
          <CameraSelect value={String(camera)} onChange={(id) => set("camera", id)} testid="rec-camera" />
        </Field>
        <Field label={t("rec.day")}>
          <input type="date" value={day} onInput={(e) => e.currentTarget.value && set("day", e.currentTarget.value)} />
        </Field>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (from) playAt(zonedToUtc(`${day}T${from}`, tz).getTime());
          }}
        >
          <Field label={t("rec.from")}>
            <input type="time" step={1} value={from} onInput={(e) => setFrom(e.currentTarget.value)} data-testid="rec-from" />
          </Field>
          <button type="submit" data-testid="rec-play">
            {t("rec.play")}
          </button>
        </form>
      </div>
      {!camera ? <p class="empty">{t("rec.pickCamera")}</p> : null}
      <ErrorText error={error} />
      {loading ? <Spinner /> : null}
      <div class="timeline-wrap card">
        <div class="timeline-head">
          <span>{tn("rec.segments", spans.length)}</span>
          {position !== null ? <b data-testid="rec-position">{localClock(new Date(position), tz)}</b> : null}
        </div>
        <div class="timeline" onClick={onTimelineClick} data-testid="timeline" role="presentation">
          {spans.map((s, i) => (
            <span
              key={s.rec.id}
              class={`seg${current?.index === i ? " playing" : ""}${s.rec.url ? "" : " open"}`}
              style={{ left: pct(s.start), width: `max(2px, calc(${pct(s.end)} - ${pct(s.start)}))` }}
              title={`${fmtTime(new Date(s.start), tz)} – ${s.rec.ended_at ? fmtTime(new Date(s.end), tz) : t("rec.open")}`}
            />
          ))}
          {position !== null ? <span class="cursor" style={{ left: pct(position) }} /> : null}
        </div>
        <div class="hours" aria-hidden="true">
          {[0, 3, 6, 9, 12, 15, 18, 21].map((h) => (
            <span key={h} style={{ left: `${(h / 24) * 100}%` }}>
              {String(h).padStart(2, "0")}h
            </span>
          ))}
        </div>
        {!loading && spans.length === 0 && camera ? <p class="muted">{t("rec.none")}</p> : null}
        {gap ? <p class="muted">{t("rec.gap")}</p> : null}
      </div>
      <video
        ref={video}
        class={`player${current ? "" : " hidden"}`}
        controls
        muted
        playsInline
        onTimeUpdate={onTimeUpdate}
        onEnded={onEnded}
        data-testid="rec-video"
      />
      {camera ? <Exporter camera={camera} day={day} tz={tz} /> : null}
    </section>
  );
}
