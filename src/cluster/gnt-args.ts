/**
 * Ganeti's command-line syntax for parameters, as its cli_opts.py parses it, and what its
 * refusals say. `-H hypervisor:key=val,...` (_SplitIdentKeyVal: the hypervisor, a colon, then
 * the list), `-O key=val,...` (_SplitKeyVal); the list is split by utils.UnescapeAndSplit, where
 * `\,` is a comma inside a value and `\x` is x, so every backslash and comma of a value is
 * escaped. A colon needs no escape: only the first one separates the hypervisor.
 */

/** One `key=value` element escaped for UnescapeAndSplit. */
export function escapeKeyVal(element: string): string {
  return element.replace(/\\/g, '\\\\').replace(/,/g, '\\,');
}

/** The value of -O / -B: `key=value` elements, each escaped, joined by commas. */
export function keyValList(elements: readonly string[]): string {
  return elements.map(escapeKeyVal).join(',');
}

/** The value of -H: the hypervisor alone, or `hypervisor:key=value,...`. */
export function hvOption(hypervisor: string, hvparams: readonly string[]): string {
  return hvparams.length ? `${hypervisor}:${keyValList(hvparams)}` : hypervisor;
}

/** What a refusal step expects Ganeti to refuse. */
export type Refused = { variant: string; os: string } | { param: string; value: string };

/**
 * Whether `output` (gnt-instance add's) is Ganeti refusing `what` by name, not failing for
 * another reason (a protocol error, a syntax error in the command, a missing node): the line
 * that says so, or undefined. A variant: ValidateOS's "OS 'os' does not support variant 'v'".
 * A parameter: ValidateOS's own refusal of the name, or the verify script's failure whose
 * output names the parameter (or its OSP_ variable) or quotes the bad value.
 */
export function refusalNaming(output: string, what: Refused): string | undefined {
  const lines = output.split('\n');
  if ('variant' in what) {
    const want = `OS '${what.os}' does not support variant '${what.variant}'`;
    return lines.find((l) => l.includes(want))?.trim();
  }
  const name = what.param;
  const osp = `OSP_${name.toUpperCase().replace(/-/g, '_')}`;
  const notSupported = lines.find((l) => /parameters are not supported by the OS/.test(l) && l.split(/[:,]\s*/).map((x) => x.trim()).includes(name));
  if (notSupported) return notSupported.trim();
  const start = lines.findIndex((l) => l.includes('OS validation script failed'));
  if (start < 0) return undefined;
  const said = lines.slice(start).join('\n');
  const names = (s: string) => new RegExp(`(^|[^A-Za-z0-9_-])(${escapeRe(name)}|${escapeRe(osp)})([^A-Za-z0-9_-]|$)`).test(s);
  if (names(said) || (what.value !== '' && said.includes(what.value))) return lines[start].trim();
  return undefined;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
