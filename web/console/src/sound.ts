// The optional sound cue of a new alert: a short two-tone beep made with Web Audio (no audio
// file to load), off by default, remembered per browser.
import { signal } from "@preact/signals";

const KEY = "gtv.sound";
export const soundOn = signal(readPref());
let ctx: AudioContext | null = null;

function readPref(): boolean {
  try {
    return localStorage.getItem(KEY) === "1";
  } catch {
    return false;
  }
}

export function setSound(on: boolean): void {
  soundOn.value = on;
  try {
    localStorage.setItem(KEY, on ? "1" : "0");
  } catch {
    /* not persisted */
  }
  if (on) beep(); // also unlocks audio: browsers allow it after a click
}

function beep(): void {
  try {
    ctx ??= new AudioContext();
    const start = ctx.currentTime;
    for (const [i, freq] of [880, 660].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, start + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.001, start + i * 0.18 + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + i * 0.18);
      osc.stop(start + i * 0.18 + 0.17);
    }
  } catch {
    /* no audio device */
  }
}

let lastBeep = 0;

/** Beep for a new alert when the sound is on (at most once a second in a burst). */
export function notifyAlert(): void {
  const now = Date.now();
  if (!soundOn.value || now - lastBeep < 1000) return;
  lastBeep = now;
  beep();
}
