// Wall-clock times in a city's IANA time zone <-> instants (UTC), without a date library:
// Intl gives the zone's offset at an instant; a wall time is found by correcting a first guess
// with that offset twice (enough across DST changes; Brazil has none since 2019).

const partsCache = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(tz: string): Intl.DateTimeFormat {
  let fmt = partsCache.get(tz);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsCache.set(tz, fmt);
  }
  return fmt;
}

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The wall-clock reading in ``tz`` at the instant ``date``. */
export function wallTime(date: Date, tz: string): WallTime {
  const out: Record<string, number> = {};
  for (const p of partsFormatter(tz).formatToParts(date)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  return {
    year: out.year ?? 0,
    month: out.month ?? 1,
    day: out.day ?? 1,
    hour: out.hour ?? 0,
    minute: out.minute ?? 0,
    second: out.second ?? 0,
  };
}

/** Offset of ``tz`` from UTC at ``date``, in milliseconds (São Paulo: -3 h). */
export function zoneOffsetMs(date: Date, tz: string): number {
  const w = wallTime(date, tz);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** The instant when the wall clock of ``tz`` reads ``local`` (``YYYY-MM-DDTHH:mm[:ss]``). */
export function zonedToUtc(local: string, tz: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(local.trim());
  if (!m) throw new RangeError(`not a local date-time: ${JSON.stringify(local)}`);
  const [, y, mo, d, h = "0", mi = "0", s = "0"] = m;
  const naive = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  let guess = naive - zoneOffsetMs(new Date(naive), tz);
  guess = naive - zoneOffsetMs(new Date(guess), tz);
  return new Date(guess);
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** ``YYYY-MM-DD`` of ``date`` in ``tz``. */
export function localDate(date: Date, tz: string): string {
  const w = wallTime(date, tz);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}`;
}

/** ``YYYY-MM-DDTHH:mm`` of ``date`` in ``tz`` (the value of an ``<input type=datetime-local>``). */
export function localDateTime(date: Date, tz: string): string {
  const w = wallTime(date, tz);
  return `${localDate(date, tz)}T${pad(w.hour)}:${pad(w.minute)}`;
}

/** ``HH:mm:ss`` of ``date`` in ``tz``. */
export function localClock(date: Date, tz: string): string {
  const w = wallTime(date, tz);
  return `${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

/** ``[start, end)`` of the day ``day`` (``YYYY-MM-DD``) in ``tz`` as instants. */
export function dayBounds(day: string, tz: string): [Date, Date] {
  const start = zonedToUtc(`${day}T00:00:00`, tz);
  const [y, m, d] = day.split("-").map(Number);
  const next = new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + 1));
  const nextDay = `${pad(next.getUTCFullYear(), 4)}-${pad(next.getUTCMonth() + 1)}-${pad(next.getUTCDate())}`;
  return [start, zonedToUtc(`${nextDay}T00:00:00`, tz)];
}
