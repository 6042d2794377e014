// What every view shares: the caller (/me), the city being watched, its cameras and their
// health, the alert totals. Signals: a change re-renders only what reads it.
import { computed, signal } from "@preact/signals";
import { api } from "./api";
import type { Camera, CameraStatus, City, Me, Summary } from "./types";

export const me = signal<Me | null>(null);
export const cities = signal<City[]>([]);
/** The city shown: the user's own, or the one an admin picked. */
export const cityId = signal<number | null>(null);
export const cameras = signal<Camera[]>([]);
export const health = signal<Map<number, CameraStatus>>(new Map());
export const summary = signal<Summary | null>(null);

export const city = computed<City | null>(
  () => cities.value.find((c) => c.id === cityId.value) ?? me.value?.city ?? null,
);
/** The city's IANA time zone: every time is shown in it. */
export const timezone = computed(() => city.value?.timezone ?? "America/Sao_Paulo");
export const cameraNames = computed(() => new Map(cameras.value.map((c) => [c.id, c.name])));

export function can(permission: string): boolean {
  return me.value?.permissions.includes(permission) ?? false;
}

/** ``?city_id=`` for admins (others are always scoped to their city by the server). */
export function cityQuery(): { city_id?: number } {
  return me.value?.role === "admin" && cityId.value !== null ? { city_id: cityId.value } : {};
}

export function cameraName(id: number): string {
  return cameraNames.value.get(id) ?? `#${id}`;
}

export async function loadMe(): Promise<void> {
  const [who, list] = await Promise.all([api<Me>("/me"), api<{ items: City[] }>("/cities")]);
  me.value = who;
  cities.value = list.items;
  if (cityId.value === null || !list.items.some((c) => c.id === cityId.value)) {
    cityId.value = who.city_id ?? list.items[0]?.id ?? null;
  }
}

export async function loadCameras(): Promise<void> {
  const [list] = await Promise.all([
    api<{ items: Camera[] }>("/cameras", { query: cityQuery() }),
    loadStatus(),
  ]);
  cameras.value = list.items.filter((c) => cityId.value === null || c.city_id === cityId.value);
}

/** Re-read every camera's health and live-video state (the wall polls it while shown). */
export async function loadStatus(): Promise<void> {
  const status = await api<{ items: CameraStatus[] }>("/cameras/status", { query: cityQuery() });
  health.value = new Map(status.items.map((s) => [s.camera_id, s]));
}

let summaryTimer: ReturnType<typeof setTimeout> | undefined;

/** Re-read the alert totals (debounced: a burst of alerts costs one request). */
export function refreshSummary(delayMs = 300): void {
  clearTimeout(summaryTimer);
  summaryTimer = setTimeout(() => {
    api<Summary>("/alerts/summary", { query: cityQuery() })
      .then((s) => {
        summary.value = s;
      })
      .catch(() => undefined);
  }, delayMs);
}

export function reset(): void {
  me.value = null;
  cities.value = [];
  cameras.value = [];
  health.value = new Map();
  summary.value = null;
}
