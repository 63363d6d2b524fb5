/** `ganeti-os info [dir]`: what the model read from a definition. */
import * as path from 'node:path';
import type { Context } from '../context';
import { findProblems } from '../definition/checks';
import { OS_SCRIPTS } from '../ganeti/rules';
import { readDefinition, requireDirectory } from '../definition/model';
import { formatMode } from '../definition/provenance';
import { templateStatus } from '../definition/upgrade-status';

export interface InfoOptions {
  dir?: string;
  json?: boolean;
}

export async function runInfo(ctx: Context, opts: InfoOptions): Promise<void> {
  const dir = path.resolve(ctx.cwd, opts.dir ?? '.');
  requireDirectory(dir);
  const def = readDefinition(dir);
  const problems = findProblems(def);
  const scripts = Object.fromEntries(
    OS_SCRIPTS.filter((s) => def.files[s].kind !== 'missing').map((s) => {
      const f = def.files[s];
      return [s, { kind: f.kind, mode: f.mode !== undefined ? formatMode(f.mode) : undefined, executable: ((f.mode ?? 0) & 0o100) !== 0, symlink: f.linkTarget }];
    }),
  );
  const doc = {
    name: def.name,
    path: def.dir,
    valid: def.verdict.valid,
    error: def.verdict.error ?? null,
    apiVersions: def.apiVersions ?? null,
    apiVersion: def.apiVersion ?? null,
    scripts,
    variants: def.variants,
    parameters: def.parameters,
    trusted: def.trusted,
    generatedBy: def.provenance ? { tool: def.provenance.tool, version: def.provenance.version, template: def.provenance.template } : null,
    templateStatus: def.provenance ? templateStatus(def.provenance) : null,
    problems,
  };
  if (opts.json) {
    ctx.out.write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  const lines = [
    `${def.name}  ${def.dir}`,
    `  status:     ${def.verdict.valid ? 'valid' : `invalid: ${def.verdict.error}`}`,
    `  API:        ${def.apiVersions ? def.apiVersions.join(', ') : '-'}${def.apiVersion ? ` (scripts get OS_API_VERSION=${def.apiVersion})` : ''}`,
    `  trusted:    ${def.trusted ? 'yes' : 'no (create_untrusted only)'}`,
    `  scripts:    ${Object.entries(scripts).map(([n, s]) => `${n} ${s.mode ?? s.kind}`).join(', ') || '-'}`,
    `  variants:   ${def.variants.length ? def.variants.map((v, i) => (i === 0 ? `${v} (default)` : v)).join(', ') : '-'}`,
    `  parameters: ${def.parameters.length ? '' : '-'}`,
    ...def.parameters.map((p) => `    ${p.name.padEnd(20)} ${p.description}`),
    `  written by: ${doc.generatedBy ? `ganeti-os ${doc.generatedBy.version}, template ${doc.generatedBy.template}` : 'not ganeti-os'}`,
    ...(doc.templateStatus ? [`  template:   ${doc.templateStatus.summary}`] : []),
  ];
  if (problems.length) {
    lines.push('  problems:');
    for (const p of problems) lines.push(`    ${p.severity}: ${p.message}`);
  }
  ctx.out.write(lines.join('\n') + '\n');
}
