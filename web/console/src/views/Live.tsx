// The camera wall: a tile per camera with its health (online / offline / stalled, from camera
// events), live video over WebRTC on demand (several tiles at once), a tile enlarged on click,
// a name filter, and the latest plate passes beside it.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { wordError } from "../errors";
import { feed } from "../feed";
import { t } from "../i18n";
import { shownState } from "../camerastate";
import { cameras, health, loadStatus, timezone } from "../state";
import type { Camera, Payload } from "../types";
import { Plate, Time } from "../ui";
import { fmtTime } from "../i18n";

const MAX_PASSES = 30;
const STATUS_POLL_MS = 10_000; // live-video states (relay, MediaMTX) have no feed events
const PLAY_ALL_MAX = 9; // the relay re-encodes per camera: keep "watch all" to a sane wall

/** Wait for ICE gathering (the server answers once, it does not trickle), at most 2 s. */
function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
}

interface LiveInfo {
  webrtc_url: string;
  mediamtx: { whep_url: string; token: string } | null;
}

/** The built-in relay: the API answers the offer (bearer = the session). */
function relay(url: string, sdp: string): Promise<RTCSessionDescriptionInit> {
  return api<RTCSessionDescriptionInit>(url, { method: "POST", body: { type: "offer", sdp } });
}

/** MediaMTX's WHEP endpoint with the short camera token the API handed out (RFC 9725). */
async function whep(m: { whep_url: string; token: string }, sdp: string): Promise<RTCSessionDescriptionInit> {
  const r = await fetch(m.whep_url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${m.token}` },
    body: sdp,
  });
  if (!r.ok) throw new ApiError(r.status, `WHEP ${r.status}`);
  return { type: "answer", sdp: await r.text() };
}

/** Live video of ``camera`` into ``video`` while ``playing``: MediaMTX (WHEP) when the server
 * has it, else the built-in relay; returns the connection state. */
function useWebRtc(camera: number, playing: boolean, video: { current: HTMLVideoElement | null }) {
  const [status, setStatus] = useState<"idle" | "connecting" | "live" | "error">("idle");
  const [error, setError] = useState("");
  useEffect(() => {
    if (!playing) {
      setStatus("idle");
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: [] });
    let closed = false;
    setStatus("connecting");
    setError("");
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (ev) => {
      const el = video.current;
      if (el) {
        el.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
        void el.play().catch(() => undefined);
      }
    };
    pc.onconnectionstatechange = () => {
      if (closed) return;
      if (pc.connectionState === "connected") setStatus("live");
      if (pc.connectionState === "failed") {
        setStatus("error");
        setError(t("live.ice"));
      }
    };
    (async () => {
      try {
        const how = await api<LiveInfo>(`/cameras/${camera}/live`);
        await pc.setLocalDescription(await pc.createOffer());
        await gathered(pc);
        const offer = pc.localDescription?.sdp ?? "";
        const answer = how.mediamtx ? await whep(how.mediamtx, offer) : await relay(how.webrtc_url, offer);
        if (!closed) await pc.setRemoteDescription(answer);
      } catch (err) {
        if (closed) return;
        setStatus("error");
        setError(wordError(err).text);
      }
    })();
    return () => {
      closed = true;
      pc.close();
      if (video.current) video.current.srcObject = null;
    };
  }, [camera, playing]);
  return { status, error };
}

interface TileProps {
  camera: Camera;
  playing: boolean;
  enlarged: boolean;
  onToggle: () => void;
  onEnlarge: () => void;
}

function Tile({ camera, playing, enlarged, onToggle, onEnlarge }: TileProps) {
  const video = useRef<HTMLVideoElement>(null);
  const { status, error } = useWebRtc(camera.id, playing, video);
  const shown = shownState(camera.enabled, health.value.get(camera.id), status === "live");
  const state = shown.state;
  return (
    <article
      class={`tile state-${state}${enlarged ? " enlarged" : ""}`}
      data-testid="tile"
      data-camera={camera.id}
    >
      <header>
        <button type="button" class="tile-name" onClick={onEnlarge} title={enlarged ? t("live.shrink") : t("live.enlarge")}>
          {camera.name}
        </button>
        <span class={`dot ${state}`} />
        <span
          class="tile-state"
          data-testid="tile-state"
          title={shown.video ? t("state.analysis", { state: t(`state.${shown.flow}`) }) : undefined}
        >
          {t(`state.${state}`)}
          {shown.video ? <span class="muted"> · {t("state.video")}</span> : null}
          {shown.since && state !== "disabled" ? (
            <span class="muted"> · {t("state.since", { time: fmtTime(shown.since, timezone.value) })}</span>
          ) : null}
        </span>
      </header>
      <div class="screen" onClick={onEnlarge}>
        <video ref={video} autoplay muted playsInline class={playing ? "" : "hidden"} data-testid="tile-video" />
        {!playing ? <span class="screen-hint">{camera.name}</span> : null}
        {playing && status === "connecting" ? <span class="screen-hint">{t("live.connecting")}</span> : null}
        {status === "error" ? (
          <span class="screen-hint error">{t("live.failed", { detail: error })}</span>
        ) : null}
      </div>
      <footer>
        <button type="button" onClick={onToggle} disabled={!camera.enabled} data-testid="tile-play">
          {playing ? t("live.stop") : t("live.play")}
        </button>
        {status === "live" ? <span class="live-pill">{t("live.pill")}</span> : null}
      </footer>
    </article>
  );
}

function Passes() {
  const [items, setItems] = useState<Payload[]>([]);
  useEffect(
    () =>
      feed.subscribe(["lpr.detected"], (batch) => {
        setItems((old) => [...batch.reverse(), ...old].slice(0, MAX_PASSES));
      }),
    [],
  );
  return (
    <aside class="passes card">
      <h2>{t("live.lastPasses")}</h2>
      {items.length === 0 ? <p class="muted">{t("live.noPasses")}</p> : null}
      <ol class="pass-list" data-testid="passes">
        {items.map((p) => (
          <li key={p.id}>
            <a href={`#/events/${p.id}`}>
              {p.crop_url ? <img src={p.crop_url} alt="" loading="lazy" /> : <span class="noimg" />}
              <Plate plate={p.plate} />
              <small>
                <Time iso={p.ts} />
              </small>
            </a>
          </li>
        ))}
      </ol>
    </aside>
  );
}

export function Live() {
  const [filter, setFilter] = useState("");
  const [playing, setPlaying] = useState<Set<number>>(new Set());
  const [enlarged, setEnlarged] = useState<number | null>(null);
  useEffect(() => {
    const timer = setInterval(() => void loadStatus().catch(() => undefined), STATUS_POLL_MS);
    return () => clearInterval(timer);
  }, []);
  const needle = filter.trim().toLowerCase();
  const shown = cameras.value.filter((c) => !needle || c.name.toLowerCase().includes(needle));

  function toggle(id: number) {
    setPlaying((old) => {
      const next = new Set(old);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  const allOn = playing.size > 0;
  function playAll() {
    setPlaying(allOn ? new Set() : new Set(shown.filter((c) => c.enabled).slice(0, PLAY_ALL_MAX).map((c) => c.id)));
  }

  return (
    <section class="live-page">
      <div class="toolbar">
        <input
          type="search"
          placeholder={t("live.filter")}
          aria-label={t("live.filter")}
          value={filter}
          onInput={(e) => setFilter(e.currentTarget.value)}
          data-testid="camera-filter"
        />
        <button type="button" onClick={playAll} disabled={shown.length === 0}>
          {allOn ? t("live.stopAll") : t("live.playAll")}
        </button>
      </div>
      <div class="live-layout">
        <div class={`wall${enlarged !== null ? " has-enlarged" : ""}`} data-testid="wall">
          {cameras.value.length === 0 ? <p class="empty">{t("live.none")}</p> : null}
          {cameras.value.length > 0 && shown.length === 0 ? <p class="empty">{t("live.noMatch")}</p> : null}
          {shown.map((c) => (
            <Tile
              key={c.id}
              camera={c}
              playing={playing.has(c.id)}
              enlarged={enlarged === c.id}
              onToggle={() => toggle(c.id)}
              onEnlarge={() => setEnlarged((cur) => (cur === c.id ? null : c.id))}
            />
          ))}
        </div>
        <Passes />
      </div>
    </section>
  );
}
