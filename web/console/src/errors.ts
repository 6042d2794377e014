// Errors as operators read them: in the console's language first. The API speaks English (its
// problem documents' ``detail`` and each field's ``msg``); the console words the common cases
// itself from the HTTP status and each field error's ``type`` and ``ctx``, and keeps the API's
// own words as the technical detail (support needs them; an unknown case shows only them).
import { ApiError, type FieldError } from "./api";
import { lang, t, tKey, type Params } from "./i18n";

const STATUSES = [400, 401, 403, 404, 409, 413, 422, 429, 502, 503];

/** One field's problem in the console's language (the API's ``msg`` when not known). */
export function fieldMessage(e: FieldError): string {
  const params: Params = { ...(e.ctx ?? {}), detail: e.msg.replace(/^Value error, /, "") };
  return (e.type && tKey(`field.${e.type}`, params)) || e.msg;
}

export interface Worded {
  /** What happened, in the console's language. */
  text: string;
  /** The API's own words, when they add something (shown smaller). */
  detail: string;
}

/** The HTTP status of an API error (``ApiError``, the login's error), else ``null``. */
function statusOf(error: unknown): number | null {
  if (error instanceof ApiError) return error.status;
  const status = (error as { status?: unknown } | null)?.status;
  return error instanceof Error && typeof status === "number" && status > 0 ? status : null;
}

/** ``error`` (an ``ApiError``, a failed fetch, anything) worded for an operator. */
export function wordError(error: unknown): Worded {
  const status = statusOf(error);
  if (status !== null) {
    const said = error instanceof Error ? error.message : "";
    const known = STATUSES.includes(status) ? status : status >= 500 ? 500 : 0;
    const text = known ? (tKey(`err.${known}`) ?? said) : said;
    // in English the API's detail is the clearer sentence; in pt-BR it is the technical detail
    if (lang.value === "en") return { text: said || text, detail: "" };
    return { text, detail: text === said ? "" : said };
  }
  if (error instanceof TypeError) return { text: t("err.network"), detail: error.message };
  const detail = error instanceof Error ? error.message : String(error);
  return { text: detail, detail: "" };
}
