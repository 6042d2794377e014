// Administration (admin, city_admin): cities and their time zones, cameras (each field's
// validation error from the API shown at the field, e.g. a refused stream URL), users and
// roles, the audit log. Tabs follow the permissions of /me; the server checks every call.
import { useEffect, useRef, useState } from "preact/hooks";
import { useSearchParams } from "wouter-preact";
import { api, ApiError } from "../api";
import { t, tDynamic } from "../i18n";
import type { MessageKey } from "../messages";
import { can, cities, cityQuery, cityId, loadCameras, loadMe, me } from "../state";
import type { AuditRow, Camera, City, Shape, User } from "../types";
import { ErrorText, Field, fieldError, Spinner, Time, useAsync } from "../ui";
import { ZoneEditor } from "./Zones";

const ROLES = ["city_admin", "operator", "analyst", "viewer"];

function FormError({ error }: { error: unknown }) {
  // per-field errors are shown at their fields; anything else here
  if (error instanceof ApiError && error.errors.some((e) => e.loc?.[0] === "body")) return null;
  return <ErrorText error={error} />;
}

function CityForm({ city, onDone }: { city?: City; onDone: () => void }) {
  const [name, setName] = useState(city?.name ?? "");
  const [tz, setTz] = useState(city?.timezone ?? "America/Sao_Paulo");
  const [error, setError] = useState<unknown>(null);
  async function submit(ev: Event) {
    ev.preventDefault();
    try {
      await api(city ? `/cities/${city.id}` : "/cities", { method: city ? "PATCH" : "POST", body: { name, timezone: tz } });
      await loadMe();
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form class="card inline-form" onSubmit={submit} data-testid="city-form">
      <Field label={t("admin.name")} error={fieldError(error, "name")}>
        <input required value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="city-name" />
      </Field>
      <Field label={t("admin.timezone")} error={fieldError(error, "timezone")}>
        <input required value={tz} onInput={(e) => setTz(e.currentTarget.value)} list="zones" data-testid="city-timezone" />
      </Field>
      <datalist id="zones">
        {["America/Sao_Paulo", "America/Manaus", "America/Cuiaba", "America/Belem", "America/Fortaleza", "America/Recife", "America/Porto_Velho", "America/Rio_Branco", "America/Noronha"].map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      <button type="submit" class="primary">{t("app.save")}</button>
      <button type="button" onClick={onDone}>{t("app.cancel")}</button>
      <FormError error={error} />
    </form>
  );
}

function Cities() {
  const [editing, setEditing] = useState<City | "new" | null>(null);
  const admin = can("cities:write");
  return (
    <div>
      {admin ? <button type="button" class="primary" onClick={() => setEditing("new")} data-testid="city-new">{t("admin.newCity")}</button> : null}
      {editing ? <CityForm city={editing === "new" ? undefined : editing} onDone={() => setEditing(null)} /> : null}
      <table class="grid">
        <thead>
          <tr><th>{t("admin.name")}</th><th>{t("admin.timezone")}</th>{admin ? <th /> : null}</tr>
        </thead>
        <tbody>
          {cities.value.map((c) => (
            <tr key={c.id} data-testid="city-row">
              <td>{c.name}</td>
              <td>{c.timezone}</td>
              {admin ? <td><button type="button" class="ghost" onClick={() => setEditing(c)}>{t("app.edit")}</button></td> : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface CameraDraft {
  name: string;
  stream_url: string;
  enabled: boolean;
  lpr_enabled: boolean;
  motion_enabled: boolean;
  analysis_fps: string;
  retention_days: string;
}

function CameraForm({ camera, onDone }: { camera?: Camera; onDone: () => void }) {
  const [d, setD] = useState<CameraDraft>({
    name: camera?.name ?? "",
    stream_url: "",
    enabled: camera?.enabled ?? true,
    lpr_enabled: camera?.lpr_enabled ?? true,
    motion_enabled: camera?.motion_enabled ?? true,
    analysis_fps: String(camera?.analysis_fps ?? 5),
    retention_days: String(camera?.retention_days ?? 30),
  });
  const [zones, setZones] = useState<Shape[] | null>(null); // null: not changed here
  const [error, setError] = useState<unknown>(null);
  async function submit(ev: Event) {
    ev.preventDefault();
    const body: Record<string, unknown> = {
      name: d.name,
      enabled: d.enabled,
      lpr_enabled: d.lpr_enabled,
      motion_enabled: d.motion_enabled,
      analysis_fps: Number(d.analysis_fps),
      retention_days: Number(d.retention_days),
    };
    if (d.stream_url || !camera) body.stream_url = d.stream_url;
    if (zones !== null) body.zones = zones;
    if (!camera && me.value?.role === "admin") body.city_id = cityId.value;
    try {
      await api(camera ? `/cameras/${camera.id}` : "/cameras", { method: camera ? "PATCH" : "POST", body });
      await loadCameras();
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const check = (k: "enabled" | "lpr_enabled" | "motion_enabled", label: MessageKey) => (
    <label class="check">
      <input type="checkbox" checked={d[k]} onChange={(e) => setD({ ...d, [k]: e.currentTarget.checked })} />
      {t(label)}
    </label>
  );
  return (
    <form class="card inline-form" onSubmit={submit} data-testid="camera-form">
      <Field label={t("admin.name")} error={fieldError(error, "name")}>
        <input required value={d.name} onInput={(e) => setD({ ...d, name: e.currentTarget.value })} />
      </Field>
      <Field label={t("admin.streamUrl")} error={fieldError(error, "stream_url")} wide>
        <input
          required={!camera}
          value={d.stream_url}
          placeholder={camera?.stream_url ?? "rtsp://user:pass@10.0.0.10/stream"}
          onInput={(e) => setD({ ...d, stream_url: e.currentTarget.value })}
          data-testid="camera-url"
        />
      </Field>
      <Field label={t("admin.fps")} error={fieldError(error, "analysis_fps")}>
        <input type="number" min={0.1} max={60} step={0.1} value={d.analysis_fps} onInput={(e) => setD({ ...d, analysis_fps: e.currentTarget.value })} />
      </Field>
      <Field label={t("admin.retention")} error={fieldError(error, "retention_days")}>
        <input type="number" min={1} max={3650} value={d.retention_days} onInput={(e) => setD({ ...d, retention_days: e.currentTarget.value })} />
      </Field>
      {check("enabled", "admin.enabled")}
      {check("lpr_enabled", "admin.lpr")}
      {check("motion_enabled", "admin.motion")}
      {camera ? <ZoneEditor cameraId={camera.id} value={zones ?? camera.zones ?? []} onChange={setZones} /> : null}
      <button type="submit" class="primary" data-testid="camera-save">{t("app.save")}</button>
      <button type="button" onClick={onDone}>{t("app.cancel")}</button>
      <FormError error={error} />
    </form>
  );
}

function Cameras() {
  const list = useAsync(() => api<{ items: Camera[] }>("/cameras", { query: cityQuery() }), [cityId.value]);
  const [editing, setEditing] = useState<Camera | "new" | null>(null);
  const writable = can("cameras:write");
  async function remove(c: Camera) {
    if (!confirm(t("app.confirmDelete", { what: c.name }))) return;
    await api(`/cameras/${c.id}`, { method: "DELETE" });
    await loadCameras();
    list.reload();
  }
  const done = () => {
    setEditing(null);
    list.reload();
  };
  return (
    <div>
      {writable ? <button type="button" class="primary" onClick={() => setEditing("new")} data-testid="camera-new">{t("admin.newCamera")}</button> : null}
      {editing ? <CameraForm camera={editing === "new" ? undefined : editing} onDone={done} /> : null}
      <ErrorText error={list.error} />
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th>{t("admin.name")}</th><th>{t("admin.streamUrl")}</th><th>{t("admin.enabled")}</th>
              <th>{t("admin.lpr")}</th><th>{t("admin.fps")}</th><th>{t("admin.retention")}</th>{writable ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((c) => (
              <tr key={c.id} data-testid="camera-row" data-camera={c.id}>
                <td>{c.name}</td>
                <td class="mono">{c.stream_url}</td>
                <td>{c.enabled ? t("app.yes") : t("app.no")}</td>
                <td>{c.lpr_enabled ? t("app.yes") : t("app.no")}</td>
                <td class="num">{c.analysis_fps}</td>
                <td class="num">{c.retention_days}</td>
                {writable ? (
                  <td class="row-actions">
                    <button type="button" class="ghost" onClick={() => setEditing(c)} data-testid="camera-edit">{t("app.edit")}</button>
                    <button type="button" class="ghost danger" onClick={() => void remove(c)}>{t("app.delete")}</button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function UserForm({ onDone }: { onDone: () => void }) {
  const [d, setD] = useState({ username: "", password: "", role: "operator" });
  const [error, setError] = useState<unknown>(null);
  async function submit(ev: Event) {
    ev.preventDefault();
    try {
      const city = me.value?.role === "admin" ? { city_id: cityId.value } : {};
      await api("/users", { method: "POST", body: { ...d, ...city } });
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form class="card inline-form" onSubmit={submit} data-testid="user-form">
      <Field label={t("admin.username")} error={fieldError(error, "username")}>
        <input required autocomplete="off" value={d.username} onInput={(e) => setD({ ...d, username: e.currentTarget.value })} data-testid="user-name" />
      </Field>
      <Field label={t("admin.password")} error={fieldError(error, "password")}>
        <input required type="password" autocomplete="new-password" minLength={8} value={d.password} onInput={(e) => setD({ ...d, password: e.currentTarget.value })} data-testid="user-password" />
      </Field>
      <Field label={t("admin.role")} error={fieldError(error, "role")}>
        <select value={d.role} onChange={(e) => setD({ ...d, role: e.currentTarget.value })} data-testid="user-role">
          {ROLES.map((r) => <option key={r} value={r}>{tDynamic(`role.${r}`, r)}</option>)}
        </select>
      </Field>
      <button type="submit" class="primary">{t("app.save")}</button>
      <button type="button" onClick={onDone}>{t("app.cancel")}</button>
      <FormError error={error} />
    </form>
  );
}

function Users() {
  const list = useAsync(() => api<{ items: User[] }>("/users", { query: cityQuery() }), [cityId.value]);
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const writable = can("users:write");
  async function patch(u: User, body: Record<string, unknown>) {
    try {
      await api(`/users/${u.id}`, { method: "PATCH", body });
      list.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <div>
      {writable ? <button type="button" class="primary" onClick={() => setAdding(true)} data-testid="user-new">{t("admin.newUser")}</button> : null}
      {adding ? <UserForm onDone={() => { setAdding(false); list.reload(); }} /> : null}
      <ErrorText error={list.error ?? error} />
      <table class="grid">
        <thead><tr><th>{t("admin.username")}</th><th>{t("admin.role")}</th><th>{t("admin.disabled")}</th></tr></thead>
        <tbody>
          {(list.data?.items ?? []).map((u) => (
            <tr key={u.id} data-testid="user-row" data-user={u.username}>
              <td>{u.username}</td>
              <td>
                {writable && u.role !== "admin" && u.id !== me.value?.id ? (
                  <select value={u.role} onChange={(e) => void patch(u, { role: e.currentTarget.value })} data-testid="user-row-role">
                    {ROLES.map((r) => <option key={r} value={r}>{tDynamic(`role.${r}`, r)}</option>)}
                  </select>
                ) : (
                  tDynamic(`role.${u.role}`, u.role)
                )}
              </td>
              <td>
                {writable && u.id !== me.value?.id ? (
                  <input type="checkbox" checked={u.disabled} onChange={(e) => void patch(u, { disabled: e.currentTarget.checked })} data-testid="user-row-disabled" />
                ) : u.disabled ? t("app.yes") : t("app.no")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type AuditPage = { items: AuditRow[]; next_before_id: number | null };

function Audit() {
  // what is typed (kept across re-renders: a controlled input re-rendered with the applied
  // filter would lose the text typed before Enter) and the filter applied on Enter or blur
  const [draft, setDraft] = useState("");
  const [action, setAction] = useState("");
  const [rows, setRows] = useState<AuditRow[]>([]);
  const [before, setBefore] = useState<number | null>(null);
  // the rows follow the newest first page only: useAsync drops the answer of a superseded
  // request (an unfiltered list arriving after the filtered one must not replace it)
  const first = useAsync(
    () => api<AuditPage>("/audit", { query: { action: action || undefined, limit: 100, ...cityQuery() } }),
    [action, cityId.value],
  );
  const shown = useRef<AuditPage | undefined>(undefined);
  useEffect(() => {
    shown.current = first.data;
    if (first.data) {
      setRows(first.data.items);
      setBefore(first.data.next_before_id);
    }
  }, [first.data]);
  async function more() {
    const base = shown.current;
    const page = await api<AuditPage>("/audit", {
      query: { action: action || undefined, limit: 100, before_id: before ?? undefined, ...cityQuery() },
    });
    if (base !== shown.current) return; // the filter changed meanwhile: that list is gone
    setRows((old) => [...old, ...page.items]);
    setBefore(page.next_before_id);
  }
  return (
    <div>
      <input type="search" placeholder={t("admin.filterAction")} aria-label={t("admin.filterAction")} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} onChange={(e) => setAction(e.currentTarget.value.trim())} data-testid="audit-filter" />
      <ErrorText error={first.error} />
      {first.loading && rows.length === 0 ? <Spinner /> : null}
      <div class="table-wrap">
        <table class="grid audit" data-testid="audit-table">
          <thead><tr><th>{t("admin.when")}</th><th>{t("admin.who")}</th><th>{t("admin.action")}</th><th>{t("admin.target")}</th><th>{t("admin.ip")}</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-testid="audit-row">
                <td><Time iso={r.ts} /></td>
                <td>{r.username}</td>
                <td class="mono">{r.action}</td>
                <td class="mono">{r.target}</td>
                <td class="mono">{r.ip}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {before ? <button type="button" class="more" onClick={() => void more()}>{t("app.loadMore")}</button> : null}
    </div>
  );
}

const TABS: { id: string; label: MessageKey; perm: string; view: () => preact.JSX.Element }[] = [
  { id: "cameras", label: "admin.cameras", perm: "cameras:write", view: Cameras },
  { id: "users", label: "admin.users", perm: "users:read", view: Users },
  { id: "cities", label: "admin.cities", perm: "cities:read", view: Cities },
  { id: "audit", label: "admin.audit", perm: "audit:read", view: Audit },
];

export function Admin() {
  const [params, setParams] = useSearchParams();
  const tabs = TABS.filter((tab) => can(tab.perm));
  const current = tabs.find((tab) => tab.id === params.get("tab")) ?? tabs[0];
  if (!current) return null;
  const View = current.view;
  return (
    <section class="admin-page">
      <h1>{t("admin.title")}</h1>
      <div class="tabs" role="tablist">
        {tabs.map((tab) => (
          <button
            key={tab.id}
            type="button"
            role="tab"
            aria-selected={tab === current}
            class={tab === current ? "active" : ""}
            onClick={() => setParams({ tab: tab.id })}
            data-testid={`admin-tab-${tab.id}`}
          >
            {t(tab.label)}
          </button>
        ))}
      </div>
      <View />
    </section>
  );
}
