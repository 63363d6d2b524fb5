/** Checks on the answers a definition is generated from: every bad input is a UsageError naming it. */
import { UsageError } from '../errors';
import { OS_API_V15, OS_API_V20, OS_API_VERSIONS, checkOsName, checkParamDescription, checkParamName, checkVariantName } from '../ganeti/rules';
import { SHELL_VAR_RE } from './shell';
import type { DefinitionSpec, ParamSpec } from './spec';
import { runSync } from '../system/process';

/** Parse `--api 20,15,10` into a list newest first. */
export function parseApiList(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new UsageError(`invalid --api '${text}': give a comma-separated list of 10, 15 and 20`);
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) throw new UsageError(`invalid API version '${p}': Ganeti 2.x and 3.x accept 10, 15 and 20`);
    out.push(Number(p));
  }
  return normaliseApiVersions(out);
}

export function normaliseApiVersions(versions: number[]): number[] {
  for (const v of versions) checkApiVersion(v);
  const uniq = [...new Set(versions)].sort((a, b) => b - a);
  if (!uniq.length) throw new UsageError('no API version given: choose from 10, 15 and 20');
  return uniq;
}

export function checkApiVersion(v: number): void {
  if (v === 5) {
    throw new UsageError('API version 5 is not supported: it is the Ganeti 1.2 interface (data as -i/-b/-s options, two fixed disks), which no current Ganeti accepts; use 10, 15 or 20');
  }
  if (!OS_API_VERSIONS.includes(v)) throw new UsageError(`invalid API version '${v}': Ganeti 2.x and 3.x accept 10, 15 and 20`);
}

/** Parse `name=description`. */
export function parseParamFlag(text: string): { name: string; description: string } {
  const i = text.indexOf('=');
  if (i < 0) throw new UsageError(`invalid --param '${text}': expected name=description`);
  const name = text.slice(0, i).trim();
  const description = text.slice(i + 1).trim();
  const bad = checkParamName(name) ?? checkParamDescription(name, description);
  if (bad) throw new UsageError(bad);
  return { name, description };
}

/** Parse KEY=VALUE for variant settings. */
export function parseSetting(text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new UsageError(`invalid --set '${text}': expected KEY=VALUE`);
  const key = text.slice(0, i);
  if (!SHELL_VAR_RE.test(key)) throw new UsageError(`invalid setting name '${key}': use upper-case shell variable names (A-Z, 0-9, _)`);
  const value = text.slice(i + 1);
  if (/[\r\n\0]/.test(value)) throw new UsageError(`invalid value for ${key}: it must be a single line`);
  return [key, value];
}

/*
 * bash -c with a socket on stdin (node's 'pipe') and SHLVL unset takes itself for a command run
 * by rshd/sshd and reads ~/.bashrc: --norc, and stdin from /dev/null (runSync's default).
 * (Processes are loaded only when a pattern is checked: system/process.ts loads its module lazily.)
 */

/** Whether bash accepts `pattern` as an extended regular expression. */
export function bashRegexError(pattern: string): string | undefined {
  const r = runSync(['bash', '--norc', '-c', '[[ "" =~ $1 ]]; [ $? -ne 2 ]', 'bash', `^(${pattern})$`]);
  if (r.error) return undefined; // no bash here: the scripts will say it
  return r.status === 0 ? undefined : `invalid pattern '${pattern}': bash does not accept it as an extended regular expression`;
}

export function bashRegexMatches(pattern: string, value: string): boolean {
  const r = runSync(['bash', '--norc', '-c', '[[ $2 =~ $1 ]]', 'bash', `^(${pattern})$`, value]);
  return r.status === 0;
}

export function checkParamSpec(p: ParamSpec): void {
  const bad = checkParamName(p.name) ?? checkParamDescription(p.name, p.description);
  if (bad) throw new UsageError(bad);
  if (p.choices) {
    if (!p.choices.length) throw new UsageError(`parameter ${p.name}: --choices needs at least one value`);
    for (const c of p.choices) {
      if (c === '' || /[,=\s]/.test(c)) throw new UsageError(`parameter ${p.name}: invalid choice '${c}' (no spaces, ',' or '=': Ganeti's -O syntax)`);
    }
    if (new Set(p.choices).size !== p.choices.length) throw new UsageError(`parameter ${p.name}: a choice is listed twice`);
  }
  if (p.pattern !== undefined) {
    if (p.pattern === '' || /[\r\n]/.test(p.pattern)) throw new UsageError(`parameter ${p.name}: the pattern must be a non-empty single line`);
    const err = bashRegexError(p.pattern);
    if (err) throw new UsageError(`parameter ${p.name}: ${err}`);
  }
  if (p.default !== undefined) {
    if (/[\r\n\0]/.test(p.default)) throw new UsageError(`parameter ${p.name}: the default must be a single line`);
    if (p.choices && !p.choices.includes(p.default)) {
      throw new UsageError(`parameter ${p.name}: the default '${p.default}' is not one of the choices (${p.choices.join(', ')})`);
    }
    if (p.pattern !== undefined && !bashRegexMatches(p.pattern, p.default)) {
      throw new UsageError(`parameter ${p.name}: the default '${p.default}' does not match the pattern ${p.pattern}`);
    }
  }
}

/** User-declared parameters need API 20: below it Ganeti has no parameters.list. */
export function checkParamsNeedApi20(apiVersions: number[], count: number): void {
  const top = Math.max(...apiVersions);
  if (top < OS_API_V20 && count) {
    throw new UsageError(`parameters need API 20: API ${top} has no parameters.list (Ganeti ignores it below 20)`, [
      'Add 20 to --api, or drop --param.',
    ]);
  }
}

/**
 * Every rule a spec must follow before anything is planned. Parameters may be present below
 * API 20: a template's own parameters still give the scripts their defaults there (Ganeti just
 * never sets them); only parameters.list, verify and the README's table need 20.
 */
export function checkSpec(spec: DefinitionSpec): void {
  const bad = checkOsName(spec.name);
  if (bad) throw new UsageError(bad);
  normaliseApiVersions(spec.apiVersions);
  const top = Math.max(...spec.apiVersions);
  if (top < OS_API_V15 && spec.variants.length) {
    throw new UsageError(`variants need API 15 or 20: API ${top} has no variants (Ganeti ignores variants.list below 15)`, [
      'Add 15 or 20 to --api, or drop --variant.',
    ]);
  }
  if (top >= OS_API_V15 && !spec.variants.length) throw new UsageError('at least one variant is needed with API 15 or 20');
  const seen = new Set<string>();
  for (const v of spec.variants) {
    const vb = checkVariantName(v.name);
    if (vb) throw new UsageError(vb);
    if (seen.has(v.name)) throw new UsageError(`variant '${v.name}' is given twice`);
    seen.add(v.name);
  }
  const pseen = new Set<string>();
  for (const p of spec.parameters) {
    checkParamSpec(p);
    if (pseen.has(p.name)) throw new UsageError(`parameter '${p.name}' is given twice`);
    pseen.add(p.name);
  }
}
