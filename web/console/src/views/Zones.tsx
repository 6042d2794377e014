// Zones and lines of a camera, drawn on its picture (GET /cameras/{id}/snapshot) in the admin
// camera form: click to place a zone's corners (3 or more, then "Concluir") or a line's two
// points; the line's arrow shows its "in" side. Coordinates are normalised to the picture, so
// the drawing holds at any resolution; the form's save sends them as the camera's ``zones``.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { t } from "../i18n";
import type { Shape } from "../types";
import { ErrorText } from "../ui";
import { arrowHead, defaultName, inArrow, MAX_SHAPES, MAX_ZONE_POINTS, nameProblem, normalise, type Point } from "../zones";

const VIEW = 1000; // the overlay's viewBox: 0..1 times this

/** The camera's picture as an object URL: the API wants the bearer, which <img> cannot send. */
function useSnapshot(cameraId: number): { url: string; error: unknown; loading: boolean } {
  const [url, setUrl] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    let made = "";
    let gone = false;
    api<Response>(`/cameras/${cameraId}/snapshot`, { raw: true })
      .then((r) => r.blob())
      .then((blob) => {
        if (gone) return;
        made = URL.createObjectURL(blob);
        setUrl(made);
      })
      .catch((err: unknown) => !gone && setError(err))
      .finally(() => !gone && setLoading(false));
    return () => {
      gone = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [cameraId]);
  return { url, error, loading };
}

const svgPoints = (points: Point[]) => points.map(([x, y]) => `${x * VIEW},${y * VIEW}`).join(" ");

function Drawn({ shape, size }: { shape: Shape; size: { w: number; h: number } }) {
  const pts = shape.points as Point[];
  if (shape.kind === "zone") {
    return <polygon class="zone-shape" points={svgPoints(pts)} vector-effect="non-scaling-stroke" />;
  }
  const [from, to] = inArrow(pts, size.w, size.h);
  const [left, right] = arrowHead(from, to, size.w, size.h);
  return (
    <g class="line-shape">
      <polyline points={svgPoints(pts)} vector-effect="non-scaling-stroke" />
      <polyline class="in-arrow" points={svgPoints([from, to, left, to, right])} vector-effect="non-scaling-stroke" />
    </g>
  );
}

interface EditorProps {
  cameraId: number;
  value: Shape[];
  onChange: (shapes: Shape[]) => void;
}

export function ZoneEditor({ cameraId, value, onChange }: EditorProps) {
  const snapshot = useSnapshot(cameraId);
  const [drawing, setDrawing] = useState<{ kind: Shape["kind"]; points: Point[] } | null>(null);
  const [name, setName] = useState("");
  const [size, setSize] = useState({ w: 16, h: 9 });
  const overlay = useRef<SVGSVGElement>(null);
  const problem = drawing ? nameProblem(name.trim(), value) : null;

  function start(kind: Shape["kind"]) {
    setDrawing({ kind, points: [] });
    setName(defaultName(kind, value));
  }

  function finish(points: Point[]) {
    if (!drawing || nameProblem(name.trim(), value)) return;
    onChange([...value, { kind: drawing.kind, name: name.trim(), points }]);
    setDrawing(null);
  }

  function place(ev: MouseEvent) {
    const box = overlay.current?.getBoundingClientRect();
    if (!drawing || !box) return;
    const points = [...drawing.points, normalise(ev.clientX, ev.clientY, box)];
    if (drawing.kind === "line" && points.length === 2) finish(points);
    else if (points.length <= MAX_ZONE_POINTS) setDrawing({ ...drawing, points });
  }

  const open = drawing?.points ?? [];
  return (
    <section class="zone-editor" data-testid="zone-editor">
      <h3>{t("zones.title")}</h3>
      <p class="muted">{drawing ? t(drawing.kind === "zone" ? "zones.hintZone" : "zones.hintLine") : t("zones.hint")}</p>
      <div class={`zone-canvas${snapshot.url ? "" : " blank"}${drawing ? " drawing" : ""}`}>
        {snapshot.url ? (
          <img
            src={snapshot.url}
            alt={t("zones.picture")}
            data-testid="zone-picture"
            onLoad={(e) => setSize({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })}
          />
        ) : (
          <span class="zone-blank">{snapshot.loading ? t("app.loading") : t("zones.noPicture")}</span>
        )}
        <svg
          ref={overlay}
          viewBox={`0 0 ${VIEW} ${VIEW}`}
          preserveAspectRatio="none"
          onClick={place}
          data-testid="zone-overlay"
        >
          {value.map((s) => (
            <Drawn key={s.name} shape={s} size={size} />
          ))}
          {open.length > 0 ? (
            <polyline class="zone-open" points={svgPoints(open)} vector-effect="non-scaling-stroke" />
          ) : null}
        </svg>
        {value.map((s) => (
          <span
            key={s.name}
            class={`zone-label ${s.kind}`}
            style={{ left: `${(s.points[0]?.[0] ?? 0) * 100}%`, top: `${(s.points[0]?.[1] ?? 0) * 100}%` }}
          >
            {s.name}
          </span>
        ))}
      </div>
      {snapshot.error ? <ErrorText error={snapshot.error} /> : null}
      <div class="form-actions">
        {drawing ? (
          <>
            <label class="zone-name">
              <span class="label">{t("zones.name")}</span>
              <input value={name} maxLength={64} onInput={(e) => setName(e.currentTarget.value)} data-testid="zone-name" />
            </label>
            {drawing.kind === "zone" ? (
              <button type="button" class="primary" disabled={open.length < 3 || !!problem} onClick={() => finish(open)} data-testid="zone-finish">
                {t("zones.finish")}
              </button>
            ) : null}
            <button type="button" onClick={() => setDrawing(null)}>
              {t("app.cancel")}
            </button>
            {problem ? <span class="error">{t(problem)}</span> : null}
          </>
        ) : (
          <>
            <button type="button" disabled={value.length >= MAX_SHAPES} onClick={() => start("zone")} data-testid="zone-new">
              {t("zones.newZone")}
            </button>
            <button type="button" disabled={value.length >= MAX_SHAPES} onClick={() => start("line")} data-testid="line-new">
              {t("zones.newLine")}
            </button>
          </>
        )}
      </div>
      {value.length ? (
        <ul class="zone-list" data-testid="zone-list">
          {value.map((s) => (
            <li key={s.name}>
              <span class={`tag ${s.kind}`}>{t(s.kind === "zone" ? "zones.zone" : "zones.line")}</span> {s.name}
              <button type="button" class="ghost danger" onClick={() => onChange(value.filter((x) => x !== s))}>
                {t("app.delete")}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
