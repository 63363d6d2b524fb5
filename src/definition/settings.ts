/**
 * The settings a template's scripts read (SUITE, MIRROR, NETWORK_<LINK>_PREFIX, ...): one table
 * per template, `settings` in its template.json. Everything about them comes from that table:
 * the documentation in defaults.conf, the settings every variants/<variant>.conf carries, which
 * keys `add-variant --set` accepts, the settings `upgrade` reports as new, and lib/settings.sh,
 * which gives the scripts every default and checks every form. A setting added to the table
 * reaches all of them.
 */
import { shq } from './shell';
import { splitLines } from '../ganeti/rules';

/** One row of a template's settings table. */
export interface Setting {
  /** The variable, or a family of them: `<WORD>` stands for upper-case letters, digits and `_` (NETWORK_<LINK>_PREFIX). */
  key: string;
  /** One line saying what it is. */
  description: string;
  /**
   * What the scripts use when no configuration layer sets it (or sets it empty, unless
   * `emptyAllowed`). `{variant}`: the variant's name (with none, the template's default
   * variant); `{site}`: the node's /etc/ganeti/<os> (such a default is shown empty, which means
   * the same). None for a family.
   */
  default?: string;
  /** An empty value is a value (e.g. no extra packages at all), not "use the default". */
  emptyAllowed?: boolean;
  /** 'variant': carried by every variants/<variant>.conf; otherwise documented in defaults.conf. */
  in?: 'variant';
  /**
   * The comment above the setting in defaults.conf, line by line (without '# '); absent: the
   * description; []: none (the paragraph above covers it).
   */
  doc?: string[];
  /** Starts a paragraph in defaults.conf (a blank line before it). */
  paragraph?: boolean;
  /** For a family: the member defaults.conf shows, commented out, with an example value. */
  example?: { key: string; value: string };
  /** The form every value must have, checked by the scripts: `^(pattern)$` as bash reads it, and what that is in words. */
  check?: { pattern: string; what: string };
}

/** Whether `s` is a family of settings (NETWORK_<LINK>_PREFIX) rather than one. */
export function isFamily(s: Setting): boolean {
  return s.key.includes('<');
}

/** The settings every variants/<variant>.conf carries. */
export function variantKeys(settings: readonly Setting[]): Setting[] {
  return settings.filter((s) => s.in === 'variant');
}

/** The default of `s` for variant `variant` ('' for a family). */
export function defaultFor(s: Setting, variant: string): string {
  return (s.default ?? '').replace(/\{variant\}/g, variant);
}

const familyRe = (key: string) => new RegExp(`^${key.split(/<[A-Z]+>/).join('[A-Z0-9_]+')}$`);

/**
 * Whether `key` is a setting of the table: one of its keys, a member of one of its families, or
 * anything when the table is empty (a template whose settings are the admin's own).
 */
export function isKnownSetting(settings: readonly Setting[], key: string): boolean {
  if (!settings.length) return true;
  return settings.some((s) => (isFamily(s) ? familyRe(s.key).test(key) : s.key === key));
}

/** How defaults.conf shows a value: bare when the shell needs no quotes, else in double quotes when they suffice. */
function shownValue(value: string): string {
  if (value === '' || /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return /["$`\\]/.test(value) ? shq(value) : `"${value}"`;
}

/**
 * defaults.conf's documentation of the settings: every setting not carried by the variants, in
 * the table's order, with its comment and its default commented out (`#KEY=default`).
 */
export function renderSettingsDoc(settings: readonly Setting[]): string {
  let out = '';
  for (const s of settings) {
    if (s.in === 'variant') continue;
    if (s.paragraph) out += '\n';
    for (const line of s.doc ?? [s.description]) out += `#${line === '' ? '' : ` ${line}`}\n`;
    if (s.example) out += `#${s.example.key}=${shownValue(s.example.value)}\n`;
    else if (!isFamily(s)) out += `#${s.key}=${s.default?.includes('{') ? '' : shownValue(s.default ?? '')}\n`;
  }
  return out;
}

/** A default as a bash word inside ${KEY:-...}: `{variant}` and `{site}` become the runtime's variables. */
function shellDefault(value: string, defaultVariant: string): string {
  return value
    .split(/(\{variant\}|\{site\})/)
    .map((part) => {
      if (part === '{variant}') return `\${GOS_VARIANT:-${shq(defaultVariant)}}`;
      if (part === '{site}') return '$GOS_SITE_DIR';
      return part === '' ? '' : shq(part);
    })
    .join('');
}

/**
 * lib/settings.sh: `gos_settings`, which gives every setting the configuration layers left
 * unset (or empty) its default and checks every setting that has a form, dying with
 * "KEY must be <what>, not '<value>'". `templateName` and `defaultVariant` (for `{variant}`
 * without a variant) come from the template.
 */
export function renderSettingsSh(settings: readonly Setting[], templateName: string, defaultVariant: string): string {
  const lines = [
    '# shellcheck shell=bash disable=SC2034',
    `# The settings of this definition's scripts: generated by ganeti-os from the ${templateName} template's`,
    '# settings table (each setting, its default and its form); `ganeti-os upgrade` keeps it current.',
    '# Change settings in defaults.conf, /etc/default/<os>, /etc/ganeti/<os>/ or variants/<variant>.conf.',
    '',
    '# gos_settings: every setting left unset by the configuration layers gets its default; each form is checked.',
    'gos_settings() {',
  ];
  const body: string[] = [];
  for (const s of settings) {
    if (isFamily(s)) continue;
    body.push(`  ${s.key}=\${${s.key}${s.emptyAllowed ? '-' : ':-'}${shellDefault(s.default ?? '', defaultVariant)}}`);
  }
  for (const s of settings) {
    if (s.check && !isFamily(s)) body.push(`  gos_check_setting ${s.key} ${shq(s.check.pattern)} ${shq(s.check.what)}`);
  }
  lines.push(...(body.length ? body : ['  :']), '}');
  return lines.join('\n') + '\n';
}

/** One `KEY=...` line of a bash configuration file, set or shown commented out (`#KEY=`, `# export KEY=...`). */
export interface ConfAssignment {
  key: string;
  /** Commented out. */
  commented: boolean;
  /** The indentation and `export ` before the key of a line that is set (kept when it is replaced). */
  lead: string;
  /** What follows `=`. */
  value: string;
}

const ASSIGNMENT_RE = /^(\s*)(#\s*)?(export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/;

/**
 * The assignment one line of a bash configuration file (defaults.conf, variants/<variant>.conf)
 * makes or shows commented out, if any: how ganeti-os reads which settings a file has.
 */
export function confAssignment(line: string): ConfAssignment | undefined {
  const m = ASSIGNMENT_RE.exec(line);
  if (!m) return undefined;
  const commented = m[2] !== undefined;
  return { key: m[4], commented, lead: commented ? '' : m[1] + (m[3] ?? ''), value: m[5] };
}

/** Every setting a configuration file sets or shows, with the first line that does. */
export function confKeys(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of splitLines(text)) {
    const a = confAssignment(l.text);
    if (a && !out.has(a.key)) out.set(a.key, l.text);
  }
  return out;
}
