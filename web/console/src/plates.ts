// Plates as people type and read them. The API normalises too (web/models.py PlateText); the
// console does the same so what it shows and what it sends agree.

const SEPARATORS = /[\s.·-]/g;

/** ``klm-3907`` / ``KLM 3907`` → ``KLM3907``; wildcards ``*`` and ``?`` kept. */
export function normalisePlate(text: string): string {
  return text.toUpperCase().replace(SEPARATORS, "");
}

/** Whether ``text`` is something the API accepts as a plate or pattern. */
export function isPlateQuery(text: string): boolean {
  const n = normalisePlate(text);
  return n.length > 0 && n.length <= 16 && /^[A-Z0-9*?]+$/.test(n);
}

/** How a plate is printed: old Brazilian plates ``KLM-3907``, Mercosul ``ABC1D23`` as is. */
export function displayPlate(plate: string | null | undefined): string {
  if (!plate) return "—";
  return /^[A-Z]{3}\d{4}$/.test(plate) ? `${plate.slice(0, 3)}-${plate.slice(3)}` : plate;
}
