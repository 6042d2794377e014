import { beforeEach, describe, expect, it } from "vitest";
import { setLang } from "../src/i18n";
import { apiQuery, equivalentNote, filtersOf, paramsOf } from "../src/search";

describe("search filters", () => {
  beforeEach(() => setLang("pt-BR"));

  it("carry the other-form option from the URL to the API and back", () => {
    const f = filtersOf(new URLSearchParams("plate=KLM3907&equivalent=1"));
    expect(f.equivalent).toBe(true);
    expect(apiQuery(f, "America/Sao_Paulo")).toMatchObject({ plate: "KLM3907", equivalent: true });
    expect(paramsOf({ ...f, plate: "klm-3907" })).toEqual({ plate: "KLM3907", equivalent: "1" });
  });

  it("leave the option out when it is off or there is no plate", () => {
    const off = filtersOf(new URLSearchParams("plate=KLM3907"));
    expect(off.equivalent).toBe(false);
    expect(apiQuery(off, "America/Sao_Paulo").equivalent).toBeUndefined();
    expect(paramsOf(off)).toEqual({ plate: "KLM3907" });
    const noPlate = filtersOf(new URLSearchParams("equivalent=1"));
    expect(apiQuery(noPlate, "America/Sao_Paulo").equivalent).toBeUndefined();
  });

  it("say when a result was found through the other form, and which form was read", () => {
    expect(equivalentNote({ equivalent: false, plate_form: "old" })).toBeNull();
    expect(equivalentNote({})).toBeNull(); // a live row (feed) has no search fields
    expect(equivalentNote({ equivalent: true, plate_form: "mercosul" })).toBe(
      "pela outra forma da placa (lida: placa Mercosul)",
    );
    setLang("en");
    expect(equivalentNote({ equivalent: true, plate_form: "old" })).toBe(
      "through the plate's other form (read: old plate)",
    );
  });
});
