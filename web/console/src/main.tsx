import { render } from "preact";
import { App } from "./app";
import { lang } from "./i18n";
import { hasSession, refresh } from "./session";
import "./styles.css";

document.documentElement.lang = lang.value;
const root = document.getElementById("app");
if (root) {
  render(<App ready={false} />, root);
  // a reload or a new tab: the refresh cookie (if any) gives this tab its access token
  const resume = hasSession() ? refresh() : Promise.resolve(false);
  void resume.finally(() => render(<App ready />, root));
}
