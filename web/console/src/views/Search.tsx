// Review and search: plate (as printed, wildcard or fuzzy, optionally with its other form, old
// ↔ Mercosul), type, camera and a time range in the city's zone; results with crops, the true
// total, pages over the keyset cursor (more load as the end of the list scrolls into view), CSV
// export for roles that may. The filters live in the URL (src/search.ts), so a search can be
// bookmarked and "back" returns to it.
import { useEffect, useRef, useState } from "preact/hooks";
import { useSearchParams } from "wouter-preact";
import { api, download } from "../api";
import { feed } from "../feed";
import { fmtPercent, t, tDynamic, tn } from "../i18n";
import { isPlateQuery } from "../plates";
import { apiQuery, equivalentNote, type Filters, filtersOf, paramsOf } from "../search";
import { cameraName, can, cityId, timezone } from "../state";
import { localDateTime } from "../time";
import type { EventRow, Page } from "../types";
import { CameraSelect, ErrorText, Field, Plate, Spinner, Time } from "../ui";
import { rowOf } from "./Alerts";

const TYPES = ["lpr.detected", "alert.triggered", "motion.incident", "camera.offline", "camera.stalled"];
const PAGE = 40;
const MAX_ROWS = 2000; // bounded: the next pages stay on the server

function ResultCard({ row }: { row: EventRow }) {
  const note = equivalentNote(row);
  return (
    <li class={`result ${row.type === "alert.triggered" ? "is-alert" : ""}`} data-testid="result">
      <a href={`#/events/${row.id}`}>
        {row.crop_url ? <img src={row.crop_url} alt="" loading="lazy" /> : <span class="noimg" />}
        <span class="result-body">
          <span class="type-tag small">{tDynamic(`type.${row.type}`, row.type)}</span>
          <Plate plate={row.plate} />
          {note ? (
            <small class="equivalent" data-testid="equivalent-match">
              {note}
            </small>
          ) : null}
          <small>
            <Time iso={row.ts} />
          </small>
          <small>
            {cameraName(row.camera_id)}
            {row.confidence !== null ? ` · ${fmtPercent(row.confidence)}` : ""}
            {row.acked_by ? ` · ✓ ${row.acked_by}` : ""}
          </small>
        </span>
      </a>
    </li>
  );
}

export function Search() {
  const [params, setParams] = useSearchParams();
  const applied = filtersOf(params);
  const [form, setForm] = useState<Filters>(applied);
  const [rows, setRows] = useState<EventRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [total, setTotal] = useState<{ n: number; capped: boolean } | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [follow, setFollow] = useState(false);
  const sentinel = useRef<HTMLDivElement>(null);
  const tz = timezone.value;
  const key = params.toString();

  const generation = useRef(0); // answers of an older search are dropped

  async function load(after: string | null) {
    const mine = after ? generation.current : ++generation.current;
    setLoading(true);
    try {
      const page = await api<Page<EventRow>>("/events", {
        query: { ...apiQuery(applied, tz), limit: PAGE, cursor: after ?? undefined, total: after ? undefined : true },
      });
      if (mine !== generation.current) return;
      setRows((old) => (after ? [...old, ...page.items] : page.items).slice(0, MAX_ROWS));
      setCursor(page.next_cursor);
      if (page.total !== undefined) setTotal({ n: page.total, capped: page.total_capped ?? false });
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    setForm(applied);
    void load(null);
  }, [key, cityId.value]);

  // the next page when the end of the list scrolls into view
  useEffect(() => {
    const el = sentinel.current;
    if (!el || !cursor) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !loading && rows.length < MAX_ROWS) void load(cursor);
    });
    io.observe(el);
    return () => io.disconnect();
  }, [cursor, loading, rows.length]);

  // "follow live": new events that match no plate/time filter are put on top (bounded)
  useEffect(() => {
    if (!follow) return;
    return feed.subscribe(["lpr.detected", "alert.triggered"], (batch) => {
      const wanted = batch.filter(
        (e) => (!applied.type || e.type === applied.type) && (!applied.camera || String(e.camera_id) === applied.camera),
      );
      if (wanted.length) setRows((old) => [...wanted.reverse().map(rowOf), ...old].slice(0, MAX_ROWS));
    });
  }, [follow, key]);

  function submit(ev: Event) {
    ev.preventDefault();
    setParams(paramsOf(form));
  }

  const plateBad = form.plate.trim() !== "" && !isPlateQuery(form.plate);
  const followable = !applied.plate && !applied.since && !applied.until;
  return (
    <section class="search-page">
      <h1>{t("search.title")}</h1>
      <form class="filters card" onSubmit={submit} data-testid="search-form">
        <Field label={t("search.plate")} error={plateBad ? "A-Z 0-9 * ?" : undefined}>
          <input
            name="plate"
            value={form.plate}
            placeholder={t("search.platePlaceholder")}
            autocomplete="off"
            onInput={(e) => setForm({ ...form, plate: e.currentTarget.value })}
            data-testid="search-plate"
          />
        </Field>
        <label class="check">
          <input type="checkbox" checked={form.fuzzy} onChange={(e) => setForm({ ...form, fuzzy: e.currentTarget.checked })} />
          {t("search.fuzzy")}
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={form.equivalent}
            onChange={(e) => setForm({ ...form, equivalent: e.currentTarget.checked })}
            data-testid="search-equivalent"
          />
          {t("search.equivalent")}
        </label>
        <Field label={t("search.type")}>
          <select value={form.type} onChange={(e) => setForm({ ...form, type: e.currentTarget.value })}>
            <option value="">{t("search.anyType")}</option>
            {TYPES.map((ty) => (
              <option key={ty} value={ty}>
                {tDynamic(`type.${ty}`, ty)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t("search.camera")}>
          <CameraSelect value={form.camera} onChange={(id) => setForm({ ...form, camera: id })} any={t("search.anyCamera")} />
        </Field>
        <Field label={t("search.since")}>
          <input
            type="datetime-local"
            value={form.since}
            max={localDateTime(new Date(), tz)}
            onInput={(e) => setForm({ ...form, since: e.currentTarget.value })}
          />
        </Field>
        <Field label={t("search.until")}>
          <input type="datetime-local" value={form.until} onInput={(e) => setForm({ ...form, until: e.currentTarget.value })} />
        </Field>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={plateBad} data-testid="search-submit">
            {t("search.submit")}
          </button>
          <button type="button" onClick={() => setParams({})}>
            {t("search.clear")}
          </button>
          {can("events:export") ? (
            <button
              type="button"
              onClick={() => void download("/events/export", apiQuery(applied, tz), "eventos.csv").catch(setError)}
              data-testid="search-export"
            >
              {t("search.export")}
            </button>
          ) : null}
        </div>
      </form>
      <div class="results-head">
        <span data-testid="search-total">
          {total ? (total.capped ? t("search.totalCapped", { n: total.n }) : tn("search.total", total.n)) : ""}
        </span>
        {followable ? (
          <label class="check">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
            {t("search.follow")}
          </label>
        ) : null}
      </div>
      <ErrorText error={error} />
      {!loading && rows.length === 0 && !error ? <p class="empty">{t("app.none")}</p> : null}
      <ol class="results" data-testid="results">
        {rows.map((row) => (
          <ResultCard key={row.id} row={row} />
        ))}
      </ol>
      <div ref={sentinel} class="sentinel" />
      {loading ? <Spinner /> : null}
      {cursor && !loading && rows.length < MAX_ROWS ? (
        <button type="button" class="more" onClick={() => void load(cursor)}>
          {t("app.loadMore")}
        </button>
      ) : null}
      {!cursor && rows.length > 0 ? <p class="muted">{t("search.end")}</p> : null}
    </section>
  );
}
