import { useState } from "preact/hooks";
import { wordError } from "../errors";
import { lang, LANGS, setLang, t, type Lang } from "../i18n";
import { expired, login, LoginError } from "../session";

export function LanguagePicker() {
  return (
    <label class="lang">
      <span class="sr-only">{t("app.language")}</span>
      <select
        value={lang.value}
        onChange={(e) => setLang((e.currentTarget as HTMLSelectElement).value as Lang)}
        data-testid="lang"
      >
        {LANGS.map((l) => (
          <option key={l} value={l}>
            {l === "pt-BR" ? "Português" : "English"}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Login() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(ev: Event) {
    ev.preventDefault();
    setBusy(true);
    setError("");
    try {
      await login(username, password);
      setPassword("");
    } catch (err) {
      const status = err instanceof LoginError ? err.status : 0;
      setError(status === 429 ? t("login.limited") : status === 401 ? t("login.failed") : wordError(err).text);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login-page">
      <form class="login card" onSubmit={submit} id="login">
        <div class="login-head">
          <h1>
            gt<span>vision</span>
          </h1>
          <LanguagePicker />
        </div>
        <h2>{t("login.title")}</h2>
        {expired.value ? <p class="notice">{t("login.expired")}</p> : null}
        <label class="field">
          <span class="label">{t("login.user")}</span>
          <input
            id="login-user"
            name="username"
            autocomplete="username"
            required
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label class="field">
          <span class="label">{t("login.password")}</span>
          <input
            id="login-password"
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {t("login.submit")}
        </button>
        <p class="error" role="alert" id="login-error">
          {error}
        </p>
      </form>
    </main>
  );
}
