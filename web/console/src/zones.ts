// Zones and directed lines of a camera (``cameras.zones``): polygons and lines in coordinates
// normalised to the picture (0..1, [0, 0] top left), as the API validates them
// (``gtvision.operators.geometry``). Pure helpers of the editor (views/Zones.tsx).
import type { Shape } from "./types";

export type Point = [number, number];

export const NAME = /^[A-Za-z0-9_.\- ]{1,64}$/;
export const MAX_SHAPES = 32;
export const MAX_ZONE_POINTS = 64;

/** A click at (``x``, ``y``) in the page as a point of the picture ``box`` (0..1, 4 decimals). */
export function normalise(x: number, y: number, box: { left: number; top: number; width: number; height: number }): Point {
  const clamp = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 10_000) / 10_000;
  return [clamp((x - box.left) / box.width), clamp((y - box.top) / box.height)];
}

/** The first free name ``zona N`` / ``linha N`` (the API takes ASCII names only). */
export function defaultName(kind: Shape["kind"], shapes: Shape[]): string {
  const stem = kind === "zone" ? "zona" : "linha";
  const taken = new Set(shapes.map((s) => s.name));
  let n = 1;
  while (taken.has(`${stem} ${n}`)) n += 1;
  return `${stem} ${n}`;
}

/** Why ``name`` cannot be used (a message key), or ``null``. */
export function nameProblem(name: string, shapes: Shape[]): "zones.badName" | "zones.takenName" | null {
  if (!NAME.test(name)) return "zones.badName";
  return shapes.some((s) => s.name === name) ? "zones.takenName" : null;
}

/**
 * Where a line's ``in`` side is: the arrow from its middle, ``length`` long, in the picture's
 * pixels (``w`` × ``h``). Looking from the first point to the second, crossing from the
 * right-hand side to the left-hand side is ``in`` (screen y grows downwards).
 */
export function inArrow(points: Point[], w: number, h: number, length = 0.06): [Point, Point] {
  const [a, b] = [points[0] ?? [0, 0], points[1] ?? [0, 0]];
  const mid: Point = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const dx = (b[0] - a[0]) * w;
  const dy = (b[1] - a[1]) * h;
  const norm = Math.hypot(dx, dy) || 1;
  // the left-hand side of the direction (dx, dy) when y points down is (dy, -dx)
  const side: Point = [(dy / norm) * length * Math.max(w, h), (-dx / norm) * length * Math.max(w, h)];
  return [mid, [mid[0] + side[0] / w, mid[1] + side[1] / h]];
}

/** The two ends of an arrowhead at ``to`` for the arrow ``from`` → ``to`` (picture ``w`` × ``h``). */
export function arrowHead(from: Point, to: Point, w: number, h: number): [Point, Point] {
  const bx = (from[0] - to[0]) * w;
  const by = (from[1] - to[1]) * h;
  const head = (angle: number): Point => {
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    return [to[0] + ((bx * c - by * s) * 0.35) / w, to[1] + ((bx * s + by * c) * 0.35) / h];
  };
  return [head(Math.PI / 6), head(-Math.PI / 6)];
}
