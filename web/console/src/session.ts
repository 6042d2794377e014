// The session: the access token lives in this module's memory only; the refresh token lives in
// an HttpOnly cookie the page cannot read (POST /auth/login {"cookie": true}). A new tab, or a
// reload, resumes by asking /auth/refresh for a new access token, which also rotates the
// cookie. Tabs refresh one at a time (Web Locks): two tabs presenting the same cookie at once
// would look like token theft to the server, which then ends the session.
import { signal } from "@preact/signals";

export const CLIENT_HEADER = { "X-GTV-Client": "console" };
const LOCK = "gtv-refresh";
const EARLY = 0.8; // refresh when 80 % of the access token's lifetime has passed

export interface Tokens {
  access_token: string;
  expires_in: number;
}

let access: string | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<boolean> | null = null;

/** True while an access token is held (drives the login screen). */
export const signedIn = signal(false);
/** Set when the session ended by itself (refresh refused), to tell the user why. */
export const expired = signal(false);

export function accessToken(): string | null {
  return access;
}

function hold(tokens: Tokens): void {
  access = tokens.access_token;
  signedIn.value = true;
  expired.value = false;
  clearTimeout(timer);
  const ms = Math.max(5, tokens.expires_in * EARLY) * 1000;
  timer = setTimeout(() => void refresh(), ms);
}

function drop(): void {
  access = null;
  clearTimeout(timer);
  signedIn.value = false;
}

export class LoginError extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

/** Log in; on success the access token is held and the refresh cookie set. */
export async function login(username: string, password: string): Promise<void> {
  const r = await fetch("/auth/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...CLIENT_HEADER },
    body: JSON.stringify({ username, password, cookie: true }),
  });
  if (!r.ok) {
    let detail = `${r.status}`;
    try {
      detail = ((await r.json()) as { detail?: string }).detail ?? detail;
    } catch {
      /* not JSON */
    }
    throw new LoginError(r.status, detail);
  }
  hold((await r.json()) as Tokens);
}

async function rotate(): Promise<boolean> {
  try {
    const r = await fetch("/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...CLIENT_HEADER },
      body: "{}",
    });
    if (!r.ok) {
      if (signedIn.value) expired.value = true;
      drop();
      return false;
    }
    hold((await r.json()) as Tokens);
    return true;
  } catch {
    return access !== null; // network trouble: keep what we have, retry on the next 401
  }
}

/** Whether the server set a session in this browser (``gtv_session``, not a secret). */
export function hasSession(): boolean {
  return document.cookie.split(";").some((c) => c.trim() === "gtv_session=1");
}

/** A new access token from the refresh cookie (one tab at a time); false when none. */
export function refresh(): Promise<boolean> {
  if (!inflight) {
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    const run = locks ? locks.request(LOCK, rotate) : rotate();
    inflight = Promise.resolve(run).finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

// Logging out in one tab logs out every tab of this browser at once.
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("gtv-session");
if (channel) {
  channel.onmessage = (msg: MessageEvent) => {
    if (msg.data === "logout") drop();
  };
}

/** End the session on the server (and its cookie), then forget the access token. */
export async function logout(): Promise<void> {
  const token = access;
  drop();
  channel?.postMessage("logout");
  if (!token) return;
  try {
    await fetch("/auth/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, ...CLIENT_HEADER },
      body: "{}",
    });
  } catch {
    /* the access token expires by itself */
  }
}
