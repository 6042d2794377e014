// Small shared pieces: loading/error states, form fields with per-field errors, times in the
// city's zone, plates as printed, lazily loaded views.
import type { ComponentChildren, ComponentType, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";
import { fieldMessage, wordError } from "./errors";
import { fmtDateTime, t } from "./i18n";
import { displayPlate } from "./plates";
import { cameras, timezone } from "./state";

export function Spinner() {
  return (
    <p class="muted" role="status">
      {t("app.loading")}
    </p>
  );
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const worded = wordError(error);
  return (
    <p class="error" role="alert">
      {t("app.error", { detail: worded.text })}
      {worded.detail ? (
        <small class="error-detail" lang="en">
          {" "}
          ({worded.detail})
        </small>
      ) : null}
    </p>
  );
}

/** A time with its date, in the city's time zone (or ``tz``). */
export function Time({ iso, tz }: { iso: string | null | undefined; tz?: string }) {
  if (!iso) return <span>—</span>;
  return <time dateTime={iso}>{fmtDateTime(iso, tz ?? timezone.value)}</time>;
}

export function Plate({ plate }: { plate: string | null | undefined }) {
  return <span class="plate">{displayPlate(plate)}</span>;
}

interface FieldProps {
  label: string;
  error?: string | undefined;
  children: ComponentChildren;
  wide?: boolean;
}

export function Field({ label, error, children, wide }: FieldProps) {
  return (
    <label class={`field${wide ? " wide" : ""}${error ? " invalid" : ""}`}>
      <span class="label">{label}</span>
      {children}
      {error ? (
        <span class="field-error" role="alert">
          {error}
        </span>
      ) : null}
    </label>
  );
}

/** The problem of ``name`` in a 422 answer, in the console's language, for :func:`Field`. */
export function fieldError(error: unknown, name: string): string | undefined {
  const found = error instanceof ApiError ? error.field(name) : undefined;
  return found ? fieldMessage(found) : undefined;
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Run ``load`` when ``deps`` change; keeps the last data while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((value) => {
        if (!live) return;
        setData(value);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, loading, reload: () => setTick((n) => n + 1) };
}

/** A view loaded on first use (keeps the first page load small). */
export function lazyView<P extends object>(
  load: () => Promise<ComponentType<P>>,
): (props: P) => JSX.Element {
  let loaded: ComponentType<P> | null = null;
  return function Lazy(props: P) {
    const [, setReady] = useState(0);
    const [error, setError] = useState<unknown>(null);
    useEffect(() => {
      if (!loaded) {
        load()
          .then((c) => {
            loaded = c;
            setReady(1);
          })
          .catch(setError);
      }
    }, []);
    if (error) return <ErrorText error={error} />;
    if (!loaded) return <Spinner />;
    const View = loaded;
    return <View {...props} />;
  };
}

export function Forbidden() {
  return <p class="empty">{t("app.forbidden")}</p>;
}

/** A choice of the city's cameras (with an "any camera" first entry when ``any`` is given). */
export function CameraSelect({
  value,
  onChange,
  any,
  testid,
}: {
  value: string;
  onChange: (id: string) => void;
  any?: string;
  testid?: string;
}) {
  return (
    <select value={value} onChange={(e) => onChange(e.currentTarget.value)} data-testid={testid}>
      {any !== undefined ? <option value="">{any}</option> : null}
      {cameras.value.map((c) => (
        <option key={c.id} value={String(c.id)}>
          {c.name}
        </option>
      ))}
    </select>
  );
}
