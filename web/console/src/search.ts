// The search filters: read from the URL (bookmarkable, "back" returns to a search), written to
// it on submit, and turned into the API's query. ``equivalent`` asks the API to find the
// plate's other form too (old KLM-3907 ↔ Mercosul KLM3J07, one vehicle: docs/api.md).
import type { Query } from "./api";
import { t } from "./i18n";
import { normalisePlate } from "./plates";
import { cityQuery } from "./state";
import { zonedToUtc } from "./time";
import type { EventRow } from "./types";

export interface Filters {
  plate: string;
  fuzzy: boolean;
  equivalent: boolean;
  type: string;
  camera: string;
  since: string; // datetime-local in the city's zone
  until: string;
}

export function filtersOf(params: URLSearchParams): Filters {
  return {
    plate: params.get("plate") ?? "",
    fuzzy: params.get("fuzzy") === "1",
    equivalent: params.get("equivalent") === "1",
    type: params.get("type") ?? "",
    camera: params.get("camera") ?? "",
    since: params.get("since") ?? "",
    until: params.get("until") ?? "",
  };
}

/** The URL parameters of the filters as submitted (empty ones left out). */
export function paramsOf(f: Filters): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.plate.trim()) out.plate = normalisePlate(f.plate);
  if (f.fuzzy) out.fuzzy = "1";
  if (f.equivalent) out.equivalent = "1";
  for (const k of ["type", "camera", "since", "until"] as const) if (f[k]) out[k] = f[k];
  return out;
}

/** The ``GET /events`` (and CSV export) query of the filters; times from the city's zone. */
export function apiQuery(f: Filters, tz: string): Query {
  const toUtc = (v: string) => (v ? zonedToUtc(v, tz).toISOString() : undefined);
  const plate = f.plate ? normalisePlate(f.plate) : undefined;
  return {
    plate,
    fuzzy: f.fuzzy || undefined,
    equivalent: plate && f.equivalent ? true : undefined,
    type: f.type || undefined,
    camera_id: f.camera || undefined,
    since: toUtc(f.since),
    until: toUtc(f.until),
    ...cityQuery(),
  };
}

/** What a result found through the plate's other form says: the form that was read. */
export function equivalentNote(row: Pick<EventRow, "equivalent" | "plate_form">): string | null {
  if (!row.equivalent) return null;
  const form = row.plate_form ? t(`plate.form.${row.plate_form}`) : "?";
  return t("search.viaOtherForm", { form });
}
