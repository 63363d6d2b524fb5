/** `ganeti-os info [dir]`: what the model read from a definition. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, UserError } from '../errors';
import { findProblems } from '../definition/checks';
import { OS_API_FILE, OS_SCRIPTS } from '../ganeti/rules';
import { readDefinition, requireDirectory } from '../definition/model';
import { PROVENANCE_FILE, formatMode } from '../definition/provenance';
import { templateStatus } from '../definition/upgrade-status';
import type { ParamSpec } from '../definition/spec';
import { definitionDir } from './definition-dir';

export interface InfoOptions {
  dir?: string;
  osDir?: string;
  json?: boolean;
}

export async function runInfo(ctx: Context, opts: InfoOptions): Promise<void> {
  if (opts.dir !== undefined && opts.osDir !== undefined && path.resolve(ctx.cwd, opts.dir) !== path.resolve(ctx.cwd, opts.osDir)) {
    throw new UsageError(`two definitions given: '${opts.dir}' and --os-dir '${opts.osDir}'; give one`);
  }
  const dir = definitionDir(ctx, opts.dir ?? opts.osDir);
  requireDirectory(dir);
  // A broken definition is reported; a directory with nothing of one is not scanned as one.
  if (![OS_API_FILE, PROVENANCE_FILE, ...OS_SCRIPTS].some((f) => fs.existsSync(path.join(dir, f)))) {
    throw new UserError(`${dir} is not an OS definition: it has no ${OS_API_FILE}, no OS script and no ${PROVENANCE_FILE}`, [
      'Run info inside an OS definition directory, or name one (info DIR or --os-dir DIR).',
    ]);
  }
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
    parameters: withChecks(def.parameters, def.provenance?.answers.parameters),
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
    ...doc.parameters.flatMap((p) => [`    ${p.name.padEnd(20)} ${p.description}`, ...(checksText(p) ? [`    ${''.padEnd(20)} ${checksText(p)}`] : [])]),
    `  written by: ${doc.generatedBy ? `ganeti-os ${doc.generatedBy.version}, template ${doc.generatedBy.template}` : 'not ganeti-os'}`,
    ...(doc.templateStatus ? [`  template:   ${doc.templateStatus.summary}`] : []),
  ];
  if (problems.length) {
    lines.push('  problems:');
    for (const p of problems) lines.push(`    ${p.severity}: ${p.message}`);
  }
  ctx.out.write(lines.join('\n') + '\n');
}

/**
 * The declared parameters with the default, choices and pattern ganeti-os recorded for them
 * (in .ganeti-os.json: `verify` and lib/parameters.sh enforce them); a definition ganeti-os did
 * not write has only names and descriptions.
 */
function withChecks(params: { name: string; description: string }[], recorded: ParamSpec[] | undefined): ParamSpec[] {
  return params.map((p) => {
    const r = recorded?.find((q) => q.name === p.name);
    return {
      ...p,
      ...(r?.default !== undefined ? { default: r.default } : {}),
      ...(r?.choices ? { choices: r.choices } : {}),
      ...(r?.pattern !== undefined ? { pattern: r.pattern } : {}),
    };
  });
}

function checksText(p: ParamSpec): string {
  return [
    p.default !== undefined ? `default: ${p.default === '' ? "'' (empty)" : p.default}` : '',
    p.choices ? `choices: ${p.choices.join(', ')}` : '',
    p.pattern !== undefined ? `pattern: ${p.pattern}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
