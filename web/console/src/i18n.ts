// Language (pt-BR by default, English selectable), messages and locale-aware formatting of
// dates, times and numbers. Every time is shown with its date, in the city's time zone.
import { signal } from "@preact/signals";
import { en, ptBR, type MessageKey } from "./messages";

export type Lang = "pt-BR" | "en";
export const LANGS: readonly Lang[] = ["pt-BR", "en"];
const CATALOGUES: Record<Lang, Record<MessageKey, string>> = { "pt-BR": ptBR, en };
const STORE_KEY = "gtv.lang"; // a display preference, never a credential

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORE_KEY);
    if (saved === "pt-BR" || saved === "en") return saved;
  } catch {
    /* storage disabled: default */
  }
  return "pt-BR";
}

export const lang = signal<Lang>(initialLang());

export function setLang(value: Lang): void {
  lang.value = value;
  document.documentElement.lang = value;
  try {
    localStorage.setItem(STORE_KEY, value);
  } catch {
    /* not persisted */
  }
}

export type Params = Record<string, string | number>;

/** ``{name}`` placeholders of ``text`` replaced by ``params`` (numbers localised). */
export function interpolate(text: string, params: Params | undefined, l: Lang): string {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    if (value === undefined) return whole;
    return typeof value === "number" ? fmtNumber(value, l) : value;
  });
}

/** The message ``key`` in the current language. */
export function t(key: MessageKey, params?: Params): string {
  const l = lang.value;
  return interpolate(CATALOGUES[l][key], params, l);
}

/** The message ``key`` for the count ``n``: ``key.one`` where the language says "one". */
export function tn(key: MessageKey, n: number, params?: Params): string {
  const l = lang.value;
  const one = `${key}.one` as MessageKey;
  const pick = new Intl.PluralRules(l).select(n) === "one" && one in CATALOGUES[l] ? one : key;
  return interpolate(CATALOGUES[l][pick], { n, ...params }, l);
}

/** A message key built at run time with its placeholders filled, ``undefined`` if unknown. */
export function tKey(key: string, params?: Params): string | undefined {
  const l = lang.value;
  const text = (CATALOGUES[l] as Record<string, string>)[key];
  return text === undefined ? undefined : interpolate(text, params, l);
}

/** A message key built at run time (event types, roles) if it exists, else ``fallback``. */
export function tDynamic(key: string, fallback: string): string {
  const table = CATALOGUES[lang.value] as Record<string, string>;
  return table[key] ?? fallback;
}

const dateTimeCache = new Map<string, Intl.DateTimeFormat>();

function formatter(l: Lang, tz: string, kind: "datetime" | "date" | "time"): Intl.DateTimeFormat {
  const key = `${l}|${tz}|${kind}`;
  let fmt = dateTimeCache.get(key);
  if (!fmt) {
    const opts: Intl.DateTimeFormatOptions = { timeZone: tz };
    if (kind !== "time") Object.assign(opts, { day: "2-digit", month: "2-digit", year: "numeric" });
    if (kind !== "date") Object.assign(opts, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    try {
      fmt = new Intl.DateTimeFormat(l, opts);
    } catch {
      fmt = new Intl.DateTimeFormat(l, { ...opts, timeZone: "UTC" });
    }
    dateTimeCache.set(key, fmt);
  }
  return fmt;
}

/** ``iso`` as date and time in ``tz`` (e.g. ``03/12/2026, 14:05:09``). */
export function fmtDateTime(iso: string | null | undefined, tz: string, l: Lang = lang.value): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatter(l, tz, "datetime").format(d);
}

/** ``iso`` as a date in ``tz``. */
export function fmtDate(iso: string | null | undefined, tz: string, l: Lang = lang.value): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatter(l, tz, "date").format(d);
}

/** ``iso`` as a time of day in ``tz``. */
export function fmtTime(iso: string | Date, tz: string, l: Lang = lang.value): string {
  const d = typeof iso === "string" ? new Date(iso) : iso;
  return formatter(l, tz, "time").format(d);
}

export function fmtNumber(n: number, l: Lang = lang.value): string {
  return new Intl.NumberFormat(l).format(n);
}

export function fmtPercent(fraction: number | null | undefined, l: Lang = lang.value): string {
  if (fraction === null || fraction === undefined) return "—";
  return new Intl.NumberFormat(l, { style: "percent", maximumFractionDigits: 1 }).format(fraction);
}
