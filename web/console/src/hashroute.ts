// Location for wouter kept entirely in the URL's hash, query included: ``#/search?plate=X``.
// (wouter's own hash hook moves the query into location.search, where it would outlive the
// page it belongs to and leak into the next one.)
import { useEffect, useState } from "preact/hooks";

const PREFIX = /^#?\/?/;

function currentPath(): string {
  return "/" + (location.hash.replace(PREFIX, "").split("?")[0] ?? "");
}

function currentSearch(): string {
  return location.hash.split("?")[1] ?? "";
}

function useHash<T>(read: () => T): T {
  const [value, setValue] = useState(read);
  useEffect(() => {
    const update = () => setValue(read);
    addEventListener("hashchange", update);
    update();
    return () => removeEventListener("hashchange", update);
  }, []);
  return value;
}

/** Go to ``to`` (``/path?query``), adding a history entry unless ``replace``. */
export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  const url = `#/${to.replace(PREFIX, "")}`;
  if (url === location.hash) return;
  if (opts.replace) history.replaceState(history.state, "", url);
  else history.pushState(history.state, "", url);
  dispatchEvent(new HashChangeEvent("hashchange"));
}

export function useHashPath(): [string, typeof navigate] {
  return [useHash(currentPath), navigate];
}
useHashPath.hrefs = (href: string): string => `#${href}`;
useHashPath.searchHook = (): string => useHash(currentSearch);
