import { describe, expect, it } from "vitest";
import type { Shape } from "../src/types";
import { arrowHead, defaultName, inArrow, nameProblem, normalise } from "../src/zones";

const zone = (name: string): Shape => ({ kind: "zone", name, points: [[0, 0], [1, 0], [1, 1]] });

describe("zone editor helpers", () => {
  it("turn a click into a point of the picture, clamped, 4 decimals", () => {
    const box = { left: 100, top: 50, width: 640, height: 360 };
    expect(normalise(420, 230, box)).toEqual([0.5, 0.5]);
    expect(normalise(90, 999, box)).toEqual([0, 1]);
    expect(normalise(101, 51, box)).toEqual([0.0016, 0.0028]);
  });

  it("name shapes the API accepts, and say why a name is refused", () => {
    expect(defaultName("zone", [zone("zona 1"), zone("zona 3")])).toBe("zona 2");
    expect(defaultName("line", [zone("zona 1")])).toBe("linha 1");
    expect(nameProblem("portão", [])).toBe("zones.badName"); // the API takes ASCII names
    expect(nameProblem("", [])).toBe("zones.badName");
    expect(nameProblem("zona 1", [zone("zona 1")])).toBe("zones.takenName");
    expect(nameProblem("gate-1.a_b", [zone("zona 1")])).toBeNull();
  });

  it("point the arrow at the line's in side (right-hand to left-hand, looking along it)", () => {
    // a line drawn down the middle of the picture: crossing it from screen left to right is "in"
    const [from, to] = inArrow([[0.5, 0], [0.5, 1]], 640, 360);
    expect(from).toEqual([0.5, 0.5]);
    expect(to[0]).toBeGreaterThan(0.5);
    expect(to[1]).toBeCloseTo(0.5);
    // drawn left to right along the picture: "in" is upwards on screen
    const [, up] = inArrow([[0, 0.75], [1, 0.75]], 640, 360);
    expect(up[1]).toBeLessThan(0.75);
  });
});

describe("arrowhead", () => {
  it("has two ends behind the tip, one on each side of the shaft", () => {
    const [l, r] = arrowHead([0.5, 0.5], [0.5, 0.4], 100, 100);
    expect(l[1]).toBeGreaterThan(0.4);
    expect(r[1]).toBeGreaterThan(0.4);
    expect(Math.sign(l[0] - 0.5)).toBe(-Math.sign(r[0] - 0.5));
  });
});
