import { describe, expect, it } from "vitest";
import { fmtDateTime, interpolate } from "../src/i18n";
import { en, ptBR } from "../src/messages";

const holes = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("catalogues", () => {
  it("have the same keys and the same placeholders in both languages", () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(ptBR).sort());
    for (const [key, text] of Object.entries(ptBR)) {
      expect(holes(en[key as keyof typeof en]), key).toEqual(holes(text));
    }
  });

  it("translate every string (English differs from Portuguese where words are shown)", () => {
    const same = Object.keys(ptBR).filter((k) => {
      const key = k as keyof typeof ptBR;
      return ptBR[key] === en[key] && /[a-zà-ú]{4,}/i.test(ptBR[key]);
    });
    // words that are the same in both languages
    expect(same.sort()).toEqual(["app.title", "nav.menu", "state.offline", "state.online"]);
  });
});

describe("formatting", () => {
  it("fills placeholders and localises numbers", () => {
    expect(interpolate("{n} resultados", { n: 12345 }, "pt-BR")).toBe("12.345 resultados");
    expect(interpolate("{n} results", { n: 12345 }, "en")).toBe("12,345 results");
    expect(interpolate("{missing} kept", {}, "en")).toBe("{missing} kept");
  });

  it("shows times with their date in the city's zone", () => {
    const iso = "2026-12-03T02:30:00Z";
    expect(fmtDateTime(iso, "America/Sao_Paulo", "pt-BR")).toBe("02/12/2026, 23:30:00");
    expect(fmtDateTime(iso, "America/Manaus", "en")).toBe("12/02/2026, 22:30:00");
    expect(fmtDateTime(null, "America/Sao_Paulo", "pt-BR")).toBe("—");
  });
});
