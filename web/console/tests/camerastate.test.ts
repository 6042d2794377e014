import { describe, expect, it } from "vitest";
import { shownState } from "../src/camerastate";
import type { CameraStatus } from "../src/types";

const status = (over: Partial<CameraStatus>): CameraStatus => ({
  camera_id: 1,
  state: "unknown",
  since: null,
  reason: null,
  detail: null,
  ...over,
});

describe("camera tile state", () => {
  it("is online while the tile decodes, though no flow ever reported the camera", () => {
    expect(shownState(true, undefined, true)).toEqual({
      state: "online",
      since: null,
      video: true,
      flow: "unknown",
    });
    expect(shownState(true, status({}), false).state).toBe("unknown");
  });

  it("is online while the server's relay or MediaMTX receives the video", () => {
    const live = { via: "mediamtx" as const, since: "2026-12-03T10:00:00Z" };
    const offline = status({ state: "offline", since: "2026-12-03T09:00:00Z", live });
    expect(shownState(true, offline, false)).toMatchObject({
      state: "online",
      since: live.since,
      video: true,
      flow: "offline",
    });
    expect(shownState(true, { ...offline, live: null }, false)).toMatchObject({
      state: "offline",
      since: "2026-12-03T09:00:00Z",
      video: false,
    });
  });

  it("keeps the flow's online with its time, and disabled wins", () => {
    const on = status({ state: "online", since: "2026-12-03T08:00:00Z" });
    expect(shownState(true, on, true)).toMatchObject({ state: "online", video: false, since: on.since });
    expect(shownState(false, on, true).state).toBe("disabled");
  });
});
