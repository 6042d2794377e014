// The console shell: session gate, header (navigation by permission, alert count, live-feed
// state, city, language, logout), the hash router and the live feed's app-wide effects.
import { signal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { Link, Redirect, Route, Router, Switch, useLocation } from "wouter-preact";
import { ACK_EVENT } from "./acks";
import { connection, feed } from "./feed";
import { useHashPath } from "./hashroute";
import { fmtNumber, t } from "./i18n";
import type { MessageKey } from "./messages";
import { displayPlate } from "./plates";
import { logout, signedIn } from "./session";
import { notifyAlert } from "./sound";
import {
  can,
  cities,
  cityId,
  health,
  loadCameras,
  loadMe,
  me,
  refreshSummary,
  reset,
  summary,
} from "./state";
import type { CameraState, Payload } from "./types";
import { ErrorText, Forbidden, lazyView, Spinner } from "./ui";
import { Alerts } from "./views/Alerts";
import { EventPage } from "./views/EventDetail";
import { Live } from "./views/Live";
import { LanguagePicker, Login } from "./views/Login";
import { Search } from "./views/Search";

const Recordings = lazyView(() => import("./views/Recordings").then((m) => m.Recordings));
const Hotlists = lazyView(() => import("./views/Hotlists").then((m) => m.Hotlists));
const Admin = lazyView(() => import("./views/Admin").then((m) => m.Admin));

interface NavItem {
  to: string;
  label: MessageKey;
  perm: string;
}

const NAV: NavItem[] = [
  { to: "/live", label: "nav.live", perm: "cameras:read" },
  { to: "/alerts", label: "nav.alerts", perm: "events:read" },
  { to: "/search", label: "nav.search", perm: "events:read" },
  { to: "/recordings", label: "nav.recordings", perm: "stream" },
  { to: "/hotlists", label: "nav.hotlists", perm: "hotlists:read" },
  { to: "/admin", label: "nav.admin", perm: "users:read" },
];

export const toast = signal<string>("");
let toastTimer: ReturnType<typeof setTimeout> | undefined;

export function showToast(text: string): void {
  toast.value = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toast.value = "";
  }, 5000);
}

function Nav() {
  const [location] = useLocation();
  const unacked = summary.value?.unacknowledged ?? 0;
  return (
    <nav class="nav" aria-label={t("nav.menu")}>
      {NAV.filter((item) => can(item.perm)).map((item) => (
        <Link
          key={item.to}
          href={item.to}
          class={location.startsWith(item.to) ? "active" : ""}
          data-testid={`nav-${item.to.slice(1)}`}
        >
          {t(item.label)}
          {item.to === "/alerts" && unacked > 0 ? (
            <span class="badge" data-testid="unacked-badge">
              {summary.value?.unacknowledged_capped ? `${fmtNumber(unacked)}+` : fmtNumber(unacked)}
            </span>
          ) : null}
        </Link>
      ))}
      <a href="/docs" target="_blank" rel="noopener">
        {t("nav.docs")}
      </a>
    </nav>
  );
}

function CityPicker() {
  if (me.value?.role !== "admin" || cities.value.length < 2) {
    return <span class="city-name">{cities.value.find((c) => c.id === cityId.value)?.name ?? ""}</span>;
  }
  return (
    <label>
      <span class="sr-only">{t("nav.city")}</span>
      <select
        value={String(cityId.value ?? "")}
        onChange={(e) => {
          cityId.value = Number((e.currentTarget as HTMLSelectElement).value);
        }}
        data-testid="city"
      >
        {cities.value.map((c) => (
          <option key={c.id} value={String(c.id)}>
            {c.name}
          </option>
        ))}
      </select>
    </label>
  );
}

function Header() {
  const state = connection.value;
  const label = state === "live" ? t("conn.live") : state === "offline" ? t("conn.offline") : t("conn.connecting");
  return (
    <header class="top">
      <a class="brand" href="#/alerts">
        gt<span>vision</span>
      </a>
      <Nav />
      <div class="top-right">
        <span class={`conn ${state}`} role="status" data-testid="conn">
          {label}
        </span>
        <CityPicker />
        <LanguagePicker />
        <span class="who" data-testid="who">
          {me.value?.username}
        </span>
        <button type="button" class="ghost" onClick={() => void logout()} data-testid="logout">
          {t("nav.logout")}
        </button>
      </div>
    </header>
  );
}

function onHealth(events: Payload[]): void {
  const next = new Map(health.value);
  for (const e of events) {
    const state = e.type.replace("camera.", "") as CameraState;
    const old = next.get(e.camera_id);
    if (old && old.since && old.since > e.ts) continue; // an older event arrived late
    next.set(e.camera_id, {
      camera_id: e.camera_id,
      state: old?.state === "disabled" ? "disabled" : state,
      since: e.ts,
      reason: e.reason ?? null,
      detail: e.detail ?? null,
      live: old?.live ?? null,
    });
  }
  health.value = next;
}

function Routes() {
  return (
    <Switch>
      <Route path="/live">{can("cameras:read") ? <Live /> : <Forbidden />}</Route>
      <Route path="/alerts">
        <Alerts />
      </Route>
      <Route path="/alerts/:id">{(p) => <Alerts selected={p.id} />}</Route>
      <Route path="/search">
        <Search />
      </Route>
      <Route path="/events/:id">{(p) => <EventPage id={p.id} />}</Route>
      <Route path="/recordings">{can("stream") ? <Recordings /> : <Forbidden />}</Route>
      <Route path="/hotlists">{can("hotlists:read") ? <Hotlists /> : <Forbidden />}</Route>
      <Route path="/admin">{can("users:read") ? <Admin /> : <Forbidden />}</Route>
      <Route path="/">
        <Redirect to="/alerts" replace />
      </Route>
      <Route>
        <p class="empty">{t("app.notFound")}</p>
      </Route>
    </Switch>
  );
}

const loadError = signal<unknown>(null);

function Shell() {
  useEffect(() => {
    loadMe()
      .then(() => {
        refreshSummary(0);
        return loadCameras();
      })
      .catch((err: unknown) => {
        loadError.value = err;
      });
    const offHealth = feed.subscribe(["camera.online", "camera.offline", "camera.stalled"], onHealth);
    const offAcks = feed.subscribe([ACK_EVENT], () => refreshSummary()); // another console's ack
    const offAlerts = feed.subscribe(["alert.triggered"], (alerts) => {
      refreshSummary();
      const last = alerts[alerts.length - 1];
      if (last) {
        showToast(t("alerts.new", { plate: displayPlate(last.plate) }));
        notifyAlert();
      }
    });
    return () => {
      offHealth();
      offAcks();
      offAlerts();
      feed.stop();
      reset();
    };
  }, []);
  const city = cityId.value;
  useEffect(() => {
    if (!me.value) return;
    feed.start(me.value.role === "admin" ? city : null);
    if (me.value.role === "admin") {
      void loadCameras();
      refreshSummary(0);
    }
  }, [city, me.value]);
  useEffect(() => {
    const timer = setInterval(() => refreshSummary(0), 15_000); // acks the feed missed
    return () => clearInterval(timer);
  }, []);

  if (loadError.value) return <ErrorText error={loadError.value} />;
  if (!me.value) return <Spinner />;
  return (
    <Router hook={useHashPath}>
      <Header />
      <main class="content">
        <Routes />
      </main>
      {toast.value ? (
        <div class="toast" role="status" data-testid="toast">
          {toast.value}
        </div>
      ) : null}
    </Router>
  );
}

export function App({ ready }: { ready: boolean }) {
  if (!ready) return <Spinner />;
  return signedIn.value ? <Shell /> : <Login />;
}
