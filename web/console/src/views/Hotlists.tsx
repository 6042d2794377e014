// Hotlists: the city's entries with kind, priority, reason and expiry (expired ones marked);
// create, edit, delete and CSV import only for roles with hotlists:write (the server checks).
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { fieldMessage } from "../errors";
import { t, tDynamic, tn } from "../i18n";
import { normalisePlate } from "../plates";
import { can, cityQuery, cityId, me, timezone } from "../state";
import { localDate, zonedToUtc } from "../time";
import type { Hotlist } from "../types";
import { ErrorText, Field, fieldError, Plate, Spinner, Time, useAsync } from "../ui";

const KINDS = ["exact", "wildcard", "fuzzy"] as const;

interface Draft {
  pattern: string;
  kind: Hotlist["kind"];
  max_distance: string;
  priority: string;
  reason: string;
  expires: string; // YYYY-MM-DD in the city's zone, end of that day
}

const EMPTY: Draft = { pattern: "", kind: "exact", max_distance: "1", priority: "0", reason: "", expires: "" };

function draftOf(h: Hotlist, tz: string): Draft {
  return {
    pattern: h.pattern,
    kind: h.kind,
    max_distance: String(h.max_distance),
    priority: String(h.priority),
    reason: h.reason,
    expires: h.expires_at ? localDate(new Date(h.expires_at), tz) : "",
  };
}

function expiresAt(day: string, tz: string): string | null {
  if (!day) return null;
  return new Date(zonedToUtc(`${day}T23:59:59`, tz).getTime() + 999).toISOString();
}

function EntryForm({ initial, onDone, editing }: { initial: Draft; onDone: () => void; editing?: number }) {
  const [d, setD] = useState<Draft>(initial);
  const [error, setError] = useState<unknown>(null);
  const tz = timezone.value;

  async function submit(ev: Event) {
    ev.preventDefault();
    const common = {
      priority: Number(d.priority),
      reason: d.reason,
      max_distance: Number(d.max_distance),
      expires_at: expiresAt(d.expires, tz),
    };
    try {
      if (editing) {
        await api(`/hotlists/${editing}`, { method: "PATCH", body: common });
      } else {
        const city = me.value?.role === "admin" ? { city_id: cityId.value } : {};
        await api("/hotlists", { method: "POST", body: { ...common, ...city, pattern: normalisePlate(d.pattern), kind: d.kind } });
      }
      onDone();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <form class="entry-form card" onSubmit={submit} data-testid="hotlist-form">
      <Field label={t("hot.pattern")} error={fieldError(error, "pattern")}>
        <input
          required
          disabled={!!editing}
          value={d.pattern}
          placeholder="KLM-3907"
          onInput={(e) => setD({ ...d, pattern: e.currentTarget.value })}
          data-testid="hotlist-pattern"
        />
      </Field>
      <Field label={t("hot.kind")}>
        <select disabled={!!editing} value={d.kind} onChange={(e) => setD({ ...d, kind: e.currentTarget.value as Draft["kind"] })}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {t(`hot.kind.${k}`)}
            </option>
          ))}
        </select>
      </Field>
      {d.kind === "fuzzy" ? (
        <Field label={t("hot.distance")} error={fieldError(error, "max_distance")}>
          <input type="number" min={0} max={8} step={0.5} value={d.max_distance} onInput={(e) => setD({ ...d, max_distance: e.currentTarget.value })} />
        </Field>
      ) : null}
      <Field label={t("hot.priority")} error={fieldError(error, "priority")}>
        <input type="number" min={-1000} max={1000} value={d.priority} onInput={(e) => setD({ ...d, priority: e.currentTarget.value })} />
      </Field>
      <Field label={t("hot.reason")} error={fieldError(error, "reason")} wide>
        <input maxLength={500} value={d.reason} onInput={(e) => setD({ ...d, reason: e.currentTarget.value })} data-testid="hotlist-reason" />
      </Field>
      <Field label={t("hot.expires")} error={fieldError(error, "expires_at")}>
        <input type="date" value={d.expires} onInput={(e) => setD({ ...d, expires: e.currentTarget.value })} />
      </Field>
      <div class="form-actions">
        <button type="submit" class="primary" data-testid="hotlist-save">
          {t("app.save")}
        </button>
        <button type="button" onClick={onDone}>
          {t("app.cancel")}
        </button>
      </div>
      {error && !(error instanceof ApiError && error.errors.length) ? <ErrorText error={error} /> : null}
    </form>
  );
}

interface ImportAnswer {
  valid: number;
  created: number;
}

function Importer({ onDone }: { onDone: () => void }) {
  const [text, setText] = useState("");
  const [replace, setReplace] = useState(false);
  const [checked, setChecked] = useState<number | null>(null);
  const [done, setDone] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function send(dryRun: boolean) {
    try {
      const city = me.value?.role === "admin" ? { city_id: cityId.value } : {};
      const res = await api<ImportAnswer>("/hotlists/import", { method: "POST", body: { csv: text, replace, dry_run: dryRun, ...city } });
      setError(null);
      if (dryRun) setChecked(res.valid);
      else {
        setDone(res.created);
        onDone();
      }
    } catch (err) {
      setChecked(null);
      setError(err);
    }
  }

  const lines = error instanceof ApiError ? error.errors : [];
  return (
    <div class="importer card" data-testid="hotlist-import">
      <Field label={t("hot.importFile")}>
        <input
          type="file"
          accept=".csv,text/csv"
          data-testid="hotlist-import-file"
          onChange={async (e) => {
            const file = e.currentTarget.files?.[0];
            setText(file ? await file.text() : "");
            setChecked(null);
            setDone(null);
          }}
        />
      </Field>
      <label class="check">
        <input type="checkbox" checked={replace} onChange={(e) => setReplace(e.currentTarget.checked)} />
        {t("hot.importReplace")}
      </label>
      <div class="form-actions">
        <button type="button" disabled={!text} onClick={() => void send(true)} data-testid="hotlist-import-check">
          {t("hot.importCheck")}
        </button>
        {checked !== null ? (
          <button type="button" class="primary" onClick={() => void send(false)} data-testid="hotlist-import-do">
            {tn("hot.importDo", checked)}
          </button>
        ) : null}
      </div>
      {checked !== null ? <p class="ok">{tn("hot.importValid", checked)}</p> : null}
      {done !== null ? <p class="ok" data-testid="hotlist-import-done">{tn("hot.importOk", done)}</p> : null}
      {lines.length ? (
        <ul class="errors" data-testid="hotlist-import-errors">
          {lines.slice(0, 50).map((l, i) => (
            <li key={i}>{t("hot.importLine", { line: l.line ?? "?", field: l.field ?? "", msg: fieldMessage(l) })}</li>
          ))}
        </ul>
      ) : (
        <ErrorText error={error} />
      )}
    </div>
  );
}

export function Hotlists() {
  const writable = can("hotlists:write");
  const tz = timezone.value;
  const list = useAsync(() => api<{ items: Hotlist[] }>("/hotlists", { query: cityQuery() }), [cityId.value]);
  const [mode, setMode] = useState<"none" | "new" | "import" | number>("none");
  const [filter, setFilter] = useState("");
  const now = Date.now();

  async function remove(h: Hotlist) {
    if (!confirm(t("app.confirmDelete", { what: h.pattern }))) return;
    await api(`/hotlists/${h.id}`, { method: "DELETE" });
    list.reload();
  }

  const done = () => {
    setMode("none");
    list.reload();
  };
  const needle = normalisePlate(filter);
  const items = (list.data?.items ?? []).filter((h) => !needle || h.pattern.includes(needle) || h.reason.toUpperCase().includes(filter.toUpperCase()));
  return (
    <section class="hotlists-page">
      <div class="page-head">
        <h1>{t("hot.title")}</h1>
        {writable ? (
          <div class="form-actions">
            <button type="button" class="primary" onClick={() => setMode("new")} data-testid="hotlist-new">
              {t("hot.new")}
            </button>
            <button type="button" onClick={() => setMode("import")} data-testid="hotlist-import-open">
              {t("hot.import")}
            </button>
          </div>
        ) : null}
      </div>
      {mode === "new" ? <EntryForm initial={EMPTY} onDone={done} /> : null}
      {mode === "import" ? <Importer onDone={() => list.reload()} /> : null}
      <input
        type="search"
        class="filter"
        placeholder={t("hot.filter")}
        aria-label={t("hot.filter")}
        value={filter}
        onInput={(e) => setFilter(e.currentTarget.value)}
      />
      <ErrorText error={list.error} />
      {list.loading && !list.data ? <Spinner /> : null}
      {list.data && items.length === 0 ? <p class="empty">{t("hot.empty")}</p> : null}
      <div class="table-wrap">
        <table class="grid" data-testid="hotlist-table">
          <thead>
            <tr>
              <th>{t("hot.pattern")}</th>
              <th>{t("hot.kind")}</th>
              <th>{t("hot.priority")}</th>
              <th>{t("hot.reason")}</th>
              <th>{t("hot.expires")}</th>
              {writable ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {items.map((h) =>
              mode === h.id ? (
                <tr key={h.id}>
                  <td colSpan={6}>
                    <EntryForm initial={draftOf(h, tz)} editing={h.id} onDone={done} />
                  </td>
                </tr>
              ) : (
                <tr key={h.id} class={h.expires_at && Date.parse(h.expires_at) < now ? "expired" : ""} data-testid="hotlist-row">
                  <td>
                    <Plate plate={h.pattern} />
                  </td>
                  <td>{tDynamic(`hot.kind.${h.kind}`, h.kind)}</td>
                  <td class="num">{h.priority}</td>
                  <td>{h.reason}</td>
                  <td>
                    {h.expires_at ? <Time iso={h.expires_at} /> : <span class="muted">{t("hot.never")}</span>}
                    {h.expires_at && Date.parse(h.expires_at) < now ? <span class="tag">{t("hot.expired")}</span> : null}
                  </td>
                  {writable ? (
                    <td class="row-actions">
                      <button type="button" class="ghost" onClick={() => setMode(h.id)} data-testid="hotlist-edit">
                        {t("app.edit")}
                      </button>
                      <button type="button" class="ghost danger" onClick={() => void remove(h)} data-testid="hotlist-delete">
                        {t("app.delete")}
                      </button>
                    </td>
                  ) : null}
                </tr>
              ),
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
