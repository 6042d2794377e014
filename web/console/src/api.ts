// The API client: bearer token from the session, one refresh-and-retry on 401, problem+json
// errors as ApiError (status, detail, per-field errors).
import { accessToken, CLIENT_HEADER, refresh } from "./session";

export interface FieldError {
  loc: (string | number)[];
  msg: string;
  /** What was wrong, as a code (pydantic's error types, ``url``, ``csv_cells`` …). */
  type?: string;
  /** Its values (limits, expected values) for wording it in the console's language. */
  ctx?: Record<string, string | number>;
  line?: number;
  field?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail);
  }

  /** The error of the field named ``name`` (last part of ``loc``), if any. */
  field(name: string): FieldError | undefined {
    return this.errors.find((e) => e.loc?.[e.loc.length - 1] === name);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

interface Options {
  method?: string;
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
  raw?: boolean;
}

async function send(path: string, opts: Options): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...CLIENT_HEADER };
  const token = accessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const init: RequestInit = { method: opts.method ?? "GET", headers, credentials: "same-origin" };
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  if (opts.signal) init.signal = opts.signal;
  return fetch(withQuery(path, opts.query), init);
}

async function problem(r: Response): Promise<ApiError> {
  let detail = `${r.status} ${r.statusText}`;
  let errors: FieldError[] = [];
  try {
    const body = (await r.json()) as { detail?: string; errors?: FieldError[] };
    detail = body.detail ?? detail;
    errors = body.errors ?? [];
  } catch {
    /* not JSON */
  }
  return new ApiError(r.status, detail, errors);
}

/** Call the API; JSON answer (or ``null`` for 204). */
export async function api<T>(path: string, opts: Options = {}): Promise<T> {
  let r = await send(path, opts);
  if (r.status === 401 && (await refresh())) r = await send(path, opts);
  if (!r.ok) throw await problem(r);
  if (opts.raw) return r as unknown as T;
  return (r.status === 204 ? null : await r.json()) as T;
}

/** Download an authenticated answer (CSV export) as a file named ``filename``. */
export async function download(path: string, query: Query, filename: string): Promise<void> {
  const r = await api<Response>(path, { query, raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
