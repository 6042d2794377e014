// What a camera tile shows: the flow's health of the camera, or "online" while its live video
// arrives (this tile decodes it, or the server's relay or MediaMTX receives it) — a camera no
// flow reads is not "no signal yet" while someone watches it.
import type { CameraState, CameraStatus } from "./types";

export interface ShownState {
  state: CameraState;
  since: string | null;
  /** Online because live video arrives, while the flow's health says otherwise. */
  video: boolean;
  /** The flow's own state (shown beside it when ``video``). */
  flow: CameraState;
}

export function shownState(
  enabled: boolean,
  status: CameraStatus | undefined,
  decoding: boolean,
): ShownState {
  const flow = status?.state ?? "unknown";
  if (!enabled) return { state: "disabled", since: null, video: false, flow };
  if (flow !== "online" && (decoding || status?.live)) {
    return { state: "online", since: status?.live?.since ?? null, video: true, flow };
  }
  return { state: flow, since: status?.since ?? null, video: false, flow };
}
