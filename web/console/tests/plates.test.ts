import { describe, expect, it } from "vitest";
import { displayPlate, isPlateQuery, normalisePlate } from "../src/plates";

describe("plates as typed", () => {
  it("normalise like the API", () => {
    for (const typed of ["KLM-3907", "klm 3907", "KLM3907", " klm·3907 ", "K.L.M-3907"]) {
      expect(normalisePlate(typed)).toBe("KLM3907");
    }
    expect(normalisePlate("kl?-39*")).toBe("KL?39*");
  });

  it("accept only letters, digits and wildcards", () => {
    expect(isPlateQuery("KLM-3907")).toBe(true);
    expect(isPlateQuery("ABC*")).toBe(true);
    expect(isPlateQuery(" - ")).toBe(false);
    expect(isPlateQuery("ABC'; DROP")).toBe(false);
    expect(isPlateQuery("A".repeat(17))).toBe(false);
  });

  it("print old plates with a hyphen, Mercosul as they are", () => {
    expect(displayPlate("KLM3907")).toBe("KLM-3907");
    expect(displayPlate("BRA2E19")).toBe("BRA2E19");
    expect(displayPlate(null)).toBe("—");
  });
});
