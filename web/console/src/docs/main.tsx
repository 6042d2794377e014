// /docs: an interactive viewer of /openapi.json, built with the console's toolchain and shipped
// in the package (no CDN, and it keeps the strict CSP: Swagger UI and Redoc inject inline
// styles). Operations are grouped by their first path segment, filterable; each shows its
// permission, parameters, body schema and responses, and can be tried with the console's
// session (or a pasted token).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { lang, t } from "../i18n";
import { LanguagePicker } from "../views/Login";
import { accessToken, CLIENT_HEADER, hasSession, refresh } from "../session";
import "../styles.css";

type Json = Record<string, unknown>;

interface Param {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: Json;
}

interface Operation {
  summary: string;
  description: string;
  parameters: Param[];
  requestBody?: { content: { "application/json": { schema: Json } } };
  responses: Record<string, { description: string }>;
  security: unknown[];
  "x-permission"?: string;
}

interface Spec {
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

const METHODS = ["get", "post", "patch", "put", "delete"];

function deref(spec: Spec, schema: Json | undefined): Json {
  const ref = schema?.$ref;
  if (typeof ref === "string") return spec.components.schemas[ref.split("/").pop() ?? ""] ?? {};
  return schema ?? {};
}

function typeOf(schema: Json): string {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Json[]).map(typeOf).join(" | ");
  if (schema.enum) return (schema.enum as unknown[]).map((v) => JSON.stringify(v)).join(" | ");
  const base = String(schema.type ?? (schema.$ref ? String(schema.$ref).split("/").pop() : "any"));
  return schema.format ? `${base} (${String(schema.format)})` : base;
}

function SchemaTable({ spec, schema }: { spec: Spec; schema: Json }) {
  const s = deref(spec, schema);
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return (
    <table class="grid small">
      <tbody>
        {Object.entries(props).map(([name, p]) => (
          <tr key={name}>
            <td class="mono">
              {name}
              {required.has(name) ? " *" : ""}
            </td>
            <td class="mono">{typeOf(p)}</td>
            <td>{String(p.description ?? p.title ?? "")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function example(spec: Spec, schema: Json | undefined): string {
  const s = deref(spec, schema);
  const out: Record<string, unknown> = {};
  const required = new Set((s.required ?? []) as string[]);
  for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
    if (required.has(name)) out[name] = p.default ?? (p.type === "integer" || p.type === "number" ? 0 : "");
  }
  return JSON.stringify(out, null, 2);
}

function TryIt({ spec, method, path, op }: { spec: Spec; method: string; path: string; op: Operation }) {
  const [values, setValues] = useState<Record<string, string>>({});
  const [body, setBody] = useState(() => example(spec, op.requestBody?.content["application/json"].schema));
  const [result, setResult] = useState<{ status: number; text: string } | null>(null);

  async function send(ev: Event) {
    ev.preventDefault();
    let url = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ""));
    const query = new URLSearchParams();
    for (const p of op.parameters.filter((p) => p.in === "query")) if (values[p.name]) query.set(p.name, values[p.name]!);
    if (query.toString()) url += `?${query}`;
    const headers: Record<string, string> = { Accept: "application/json", ...CLIENT_HEADER };
    const token = tokenBox.value || accessToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init: RequestInit = { method: method.toUpperCase(), headers };
    if (op.requestBody) {
      headers["Content-Type"] = "application/json";
      init.body = body;
    }
    const r = await fetch(url, init);
    let text = await r.text();
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* not JSON */
    }
    setResult({ status: r.status, text });
  }

  return (
    <form class="try" onSubmit={send}>
      {op.parameters.map((p) => (
        <label class="field" key={p.name}>
          <span class="label mono">
            {p.name} ({p.in}){p.required ? ` · ${t("docs.required")}` : ""}
          </span>
          <input value={values[p.name] ?? ""} placeholder={typeOf(p.schema)} onInput={(e) => setValues({ ...values, [p.name]: e.currentTarget.value })} />
        </label>
      ))}
      {op.requestBody ? (
        <label class="field wide">
          <span class="label">{t("docs.body")}</span>
          <textarea rows={6} class="mono" value={body} onInput={(e) => setBody(e.currentTarget.value)} />
        </label>
      ) : null}
      <button type="submit" class="primary">
        {t("docs.send")}
      </button>
      {result ? (
        <div class="result">
          <b>
            {t("docs.response")}: {result.status}
          </b>
          <pre>{result.text}</pre>
        </div>
      ) : null}
    </form>
  );
}

const tokenBox = { value: "" };

function OperationView({ spec, method, path, op }: { spec: Spec; method: string; path: string; op: Operation }) {
  const [open, setOpen] = useState(false);
  const [trying, setTrying] = useState(false);
  return (
    <article class={`op ${method}`} data-testid="operation">
      <button type="button" class="op-head" onClick={() => setOpen(!open)} aria-expanded={open}>
        <span class={`method ${method}`}>{method.toUpperCase()}</span>
        <span class="mono">{path}</span>
        <span class="muted">{op.summary}</span>
      </button>
      {open ? (
        <div class="op-body">
          {op.description ? <p class="pre">{op.description}</p> : null}
          <p>
            {t("docs.permission")}: <span class="mono">{op["x-permission"] ?? t("docs.public")}</span>
          </p>
          {op.parameters.length ? (
            <>
              <h4>{t("docs.params")}</h4>
              <table class="grid small">
                <tbody>
                  {op.parameters.map((p) => (
                    <tr key={p.name}>
                      <td class="mono">
                        {p.name}
                        {p.required ? " *" : ""}
                      </td>
                      <td>{p.in}</td>
                      <td class="mono">{typeOf(p.schema)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
          {op.requestBody ? (
            <>
              <h4>{t("docs.body")}</h4>
              <SchemaTable spec={spec} schema={op.requestBody.content["application/json"].schema} />
            </>
          ) : null}
          <h4>{t("docs.responses")}</h4>
          <ul class="responses">
            {Object.entries(op.responses).map(([code, r]) => (
              <li key={code}>
                <b>{code}</b> {r.description}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => setTrying(!trying)}>
            {t("docs.try")}
          </button>
          {trying ? <TryIt spec={spec} method={method} path={path} op={op} /> : null}
        </div>
      ) : null}
    </article>
  );
}

function Docs() {
  const [spec, setSpec] = useState<Spec | null>(null);
  const [error, setError] = useState("");
  const [filter, setFilter] = useState("");
  const [token, setToken] = useState("");
  useEffect(() => {
    fetch("/openapi.json")
      .then((r) => r.json() as Promise<Spec>)
      .then(setSpec)
      .catch((err: unknown) => setError(String(err)));
  }, []);
  tokenBox.value = token;
  lang.value; // re-render on a language change
  const needle = filter.toLowerCase();
  const groups = new Map<string, [string, string, Operation][]>();
  for (const [path, ops] of Object.entries(spec?.paths ?? {})) {
    for (const method of METHODS) {
      const op = ops[method];
      if (!op) continue;
      if (needle && !`${method} ${path} ${op.summary}`.toLowerCase().includes(needle)) continue;
      const group = path.split("/")[1] ?? "";
      groups.set(group, [...(groups.get(group) ?? []), [method, path, op]]);
    }
  }
  return (
    <main class="docs content">
      <header class="page-head">
        <h1>
          {t("docs.title")} {spec ? <small class="muted">{spec.info.version}</small> : null}
        </h1>
        <LanguagePicker />
      </header>
      <div class="toolbar">
        <input type="search" placeholder={t("docs.filter")} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} data-testid="docs-filter" />
        <label class="field">
          <span class="label">{t("docs.token")}</span>
          <input value={token} placeholder={accessToken() ? "(session)" : ""} onInput={(e) => setToken(e.currentTarget.value.trim())} />
        </label>
      </div>
      <p class="muted">{t("docs.tokenHint")}</p>
      {error ? <p class="error">{error}</p> : null}
      {[...groups.entries()].map(([group, ops]) => (
        <section key={group} class="op-group">
          <h2>/{group}</h2>
          {ops.map(([method, path, op]) => (
            <OperationView key={`${method} ${path}`} spec={spec!} method={method} path={path} op={op} />
          ))}
        </section>
      ))}
    </main>
  );
}

const root = document.getElementById("docs");
if (root) {
  document.documentElement.lang = lang.value;
  void (hasSession() ? refresh() : Promise.resolve(false)).finally(() => render(<Docs />, root));
}
