import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { fieldMessage, wordError } from "../src/errors";
import { lang } from "../src/i18n";

afterEach(() => {
  lang.value = "pt-BR";
});

describe("errors in the operator's language", () => {
  it("word an API error by its status in Portuguese, keeping the API's words as detail", () => {
    lang.value = "pt-BR";
    const down = new ApiError(503, "service unavailable: Redis does not answer; retry in 5 s");
    expect(wordError(down)).toEqual({
      text: "Serviço indisponível no momento. Tente de novo em instantes.",
      detail: "service unavailable: Redis does not answer; retry in 5 s",
    });
    expect(wordError(new ApiError(504, "gateway timeout")).text).toMatch(/^O servidor falhou/);
    expect(wordError(new ApiError(418, "a teapot"))).toEqual({ text: "a teapot", detail: "" });
    expect(wordError(new TypeError("Failed to fetch")).text).toMatch(/^Sem conexão/);
    lang.value = "en";
    expect(wordError(down)).toEqual({ text: down.detail, detail: "" });
  });

  it("word field errors from their type and values, else show the API's message", () => {
    lang.value = "pt-BR";
    const kind = {
      loc: ["body", "kind"],
      msg: "Input should be 'exact', 'wildcard' or 'fuzzy'",
      type: "literal_error",
      ctx: { expected: "'exact', 'wildcard' or 'fuzzy'" },
    };
    expect(fieldMessage(kind)).toBe("valor não aceito (aceitos: 'exact', 'wildcard' or 'fuzzy')");
    const long = { loc: ["body", "reason"], msg: "x", type: "string_too_long", ctx: { max_length: 500 } };
    expect(fieldMessage(long)).toBe("longo demais (máximo 500)");
    const custom = { loc: ["body", "zones"], msg: "Value error, names must be unique", type: "value_error" };
    expect(fieldMessage(custom)).toBe("inválido: names must be unique");
    expect(fieldMessage({ loc: ["x"], msg: "as the API says", type: "brand_new" })).toBe("as the API says");
    lang.value = "en";
    expect(fieldMessage(long)).toBe("too long (at most 500)");
  });
});
