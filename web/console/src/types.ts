// Shapes of the API answers the console reads (docs/api.md; /openapi.json).

export interface City {
  id: number;
  name: string;
  timezone: string;
}

export interface Me {
  id: number;
  username: string;
  role: string;
  city_id: number | null;
  city: City | null;
  permissions: string[];
}

export interface Camera {
  id: number;
  city_id: number;
  name: string;
  stream_url: string;
  enabled: boolean;
  lpr_enabled: boolean;
  motion_enabled: boolean;
  analysis_fps: number;
  retention_days: number;
  zones?: Shape[];
}

/** A zone (polygon, 3..64 points) or a directed line (2 points), normalised to the picture. */
export interface Shape {
  kind: "zone" | "line";
  name: string;
  points: [number, number][];
}

export type CameraState = "online" | "offline" | "stalled" | "unknown" | "disabled";

export interface CameraStatus {
  camera_id: number;
  state: CameraState;
  since: string | null;
  reason: string | null;
  detail: string | null;
  /** Live video of the camera being received now (the server's relay, or MediaMTX). */
  live?: { via: "relay" | "mediamtx"; since: string | null } | null;
}

export interface Candidate {
  text: string;
  confidence: number;
}

export interface Match {
  entry_id: number;
  pattern: string;
  kind: string;
  distance?: number;
  priority?: number;
  reason?: string;
  plate_form?: "old" | "mercosul" | null;
  equivalent?: boolean;
}

/** The event JSON (what the flows wrote; also the SSE ``data``). */
export interface Payload {
  id: string;
  type: string;
  city_id: number;
  camera_id: number;
  ts: string;
  plate?: string;
  confidence?: number;
  reads?: number;
  pass_id?: string;
  match?: Match;
  crop_key?: string | null;
  crop_url?: string | null;
  reason?: string;
  detail?: string;
  /** alert.acknowledged */
  alert_id?: string;
  action?: "ack" | "note";
  entry?: number;
  username?: string;
  note?: string;
}

export interface EventRow {
  id: string;
  type: string;
  city_id: number;
  camera_id: number;
  ts: string;
  plate: string | null;
  confidence: number | null;
  payload: Payload;
  crop_url: string | null;
  clip_url: string | null;
  acked_by: string | null;
  acked_at: string | null;
  /** the Brazilian form of the plate as read (search results; null: neither layout) */
  plate_form?: "old" | "mercosul" | null;
  /** found through the plate's other form (a search with ``equivalent``) */
  equivalent?: boolean;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  total?: number;
  total_capped?: boolean;
}

export interface AckEntry {
  id: number;
  action: "ack" | "note";
  username: string;
  note: string;
  ts: string;
}

export interface EventDetail extends EventRow {
  camera: { id: number; name: string | null };
  timezone: string;
  candidates: Candidate[];
  match: Match | null;
  pass: EventRow | null;
  alerts: EventRow[];
  history: AckEntry[];
  recording: { id: string; started_at: string; ended_at: string | null; offset_s: number } | null;
  crop_missing?: boolean;
  clip_missing?: boolean;
  ack_note?: string | null;
}

export interface Summary {
  unacknowledged: number;
  unacknowledged_capped: boolean;
  last_24h: number;
}

export interface Recording {
  id: string;
  camera_id: number;
  started_at: string;
  ended_at: string | null;
  url: string | null;
  bytes: number | null;
}

export interface Hotlist {
  id: number;
  city_id: number;
  pattern: string;
  kind: "exact" | "wildcard" | "fuzzy";
  max_distance: number;
  priority: number;
  reason: string;
  expires_at: string | null;
  created_at: string;
}

export interface User {
  id: number;
  username: string;
  role: string;
  city_id: number | null;
  disabled: boolean;
}

export interface AuditRow {
  id: number;
  ts: string;
  username: string;
  city_id: number | null;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  ip: string;
}
