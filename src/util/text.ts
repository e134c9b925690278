// Text helpers shared by every layer that quotes something back to a person.

/** User input quoted back in an error, kept short (a 100 KB value must not come back whole). */
export function clip(raw: unknown, max = 40): string {
  const s = String(raw);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
