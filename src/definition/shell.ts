/** Quoting for the shell we generate. */

/** A bash word that expands to exactly `s`. */
export function shq(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export const SHELL_VAR_RE = /^[A-Z_][A-Z0-9_]*$/;
