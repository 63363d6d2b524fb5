/**
 * Moving a definition to another OS interface version (`ganeti-os bump-api`): ganeti_api_version
 * rewritten, and the files the versions bring or take (variants.list from 15, parameters.list
 * and verify from 20) added or removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../errors';
import {
  OS_API_FILE,
  OS_API_V15,
  OS_API_V20,
  OS_API_VERSIONS,
  OS_PARAMETERS_FILE,
  OS_SCRIPT_VERIFY,
  OS_VARIANTS_FILE,
  formatApiVersions,
} from '../../ganeti/rules';
import {
  Edit,
  Loaded,
  maintenance,
  addVariantLine,
  checkVariantsVisibility,
  facts,
  foreignVariantConfig,
  foreignVariantsDir,
  planPath,
  readText,
} from '../maintain';
import { textOp, work } from '../worker';
import { TEMPLATES_DIR } from '../../paths';
import { Plan, PlanOp } from '../plan';
import type { DefinitionSpec } from '../spec';
import { variantSettings } from '../templates';
import { apiRejection } from '../checks';

export interface BumpApiEdit {
  /** The version to move to (10, 15 or 20, checked by the caller). */
  version: number;
  /** List only that version. */
  only?: boolean;
  force?: boolean;
  /** Only for the wording of a warning. */
  dryRun?: boolean;
}

const DEFAULT_VARIANT = 'default';

/**
 * Move the loaded definition `l` to API `opts.version` (and the lower ones its scripts handle).
 * Returns the plan; writes nothing. Throws UserError (nothing changed) for parameters the new
 * version cannot carry or a change in whether Ganeti sees variants (both unless `force`).
 */
export function bumpApi(l: Loaded, opts: BumpApiEdit): Edit {
  const v = opts.version;
  const versions = newVersions(l, v, !!opts.only);
  const top = Math.max(...versions);
  if (sameList(versions, l.apiVersions)) {
    // Already there: not a byte changes (order, unsupported versions, line ends stay).
    return {
      plan: { root: l.root, ops: [], notes: [] },
      summary: `${l.name} already lists API ${l.apiVersions.join(', ')}`,
      facts: { command: 'bump-api', version: v, ...facts(l, l.apiVersions, l.maxApi >= OS_API_V15 ? l.variants : [], l.maxApi >= OS_API_V20 ? l.parameters.map((p) => p.name) : []) },
      warnings: [],
    };
  }
  // Parameters and variants the new version cannot carry.
  if (v < OS_API_V20 && l.maxApi >= OS_API_V20 && l.parameters.length && !opts.force) {
    throw new UserError(
      `${l.name} declares parameters (${l.parameters.map((p) => p.name).join(', ')}), which API ${v} does not have (Ganeti reads parameters.list from version 20); nothing was changed`,
      [
        l.provenance
          ? 'Remove them first (ganeti-os remove-param NAME), or run again with --force: Ganeti then passes none, and the scripts use their defaults.'
          : 'Remove them first (ganeti-os remove-param NAME), or run again with --force (parameters.list stays; Ganeti ignores it below API 20).',
      ],
    );
  }
  // Whether Ganeti sees variants changes the names instances carry: never silently.
  checkVariantsVisibility(l, { maxApi: top, variants: l.variants.length ? l.variants : [DEFAULT_VARIANT] }, opts.force);
  // Scripts that exit for the version Ganeti would pass: every instance operation would fail.
  const rejection = apiRejection(l.root, versions);
  if (rejection && !opts.force) {
    throw new UserError(`${rejection}; nothing was changed`, [
      `Make the scripts handle OS_API_VERSION=${top} first, or run again with --force to list it anyway (then check with 'ganeti-os validate').`,
    ]);
  }
  const warnings = rejection ? [`${rejection}; ${opts.dryRun ? 'bump-api would write it anyway (--force)' : 'writing it anyway (--force)'}: check the scripts, then run 'ganeti-os validate'.`] : [];

  const plan = l.provenance ? planOwn(l, v, versions, opts) : planForeign(l, v, versions);
  if (v < OS_API_V15 && l.variants.length && l.provenance) {
    plan.notes.push(
      `Ganeti ignores variants.list below API 15 and passes an empty OS_VARIANT; the file stays so that the scripts use the first variant's configuration ('${l.variants[0]}').`,
    );
  }
  const variants = top >= OS_API_V15 && !l.variants.length ? [DEFAULT_VARIANT] : l.variants;
  return {
    plan,
    summary: `${l.name} now lists API ${versions.join(', ')} (Ganeti uses ${top})`,
    facts: { command: 'bump-api', version: v, ...facts(l, versions, top >= OS_API_V15 ? variants : [], top >= OS_API_V20 ? (l.spec?.parameters ?? l.parameters).map((p) => p.name) : []) },
    warnings,
  };
}

/** The version first, then the lower ones the scripts handle (only it with --only). */
function newVersions(l: Loaded, v: number, only: boolean): number[] {
  if (only) return l.apiVersions.length === 1 && l.apiVersions[0] === v ? l.apiVersions : [v];
  // Already the highest: nothing to do (the file stays as it is, order included).
  if (l.maxApi === v) return l.apiVersions;
  // ganeti-os scripts handle every version; another definition's handle what it already lists.
  // Lower versions listed beside (5, or ones Ganeti does not know) stay: only v was given.
  const handled = l.provenance ? [...OS_API_VERSIONS, ...l.apiVersions] : l.apiVersions;
  return [...new Set([v, ...handled.filter((x) => x < v)])].sort((a, b) => b - a);
}

const sameList = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function planOwn(l: Loaded, v: number, versions: number[], opts: BumpApiEdit): Plan {
  const old = l.spec!;
  const spec: DefinitionSpec = { ...old, apiVersions: versions };
  let variantsText: string | undefined;
  let parametersText: string | null | undefined;
  if (v >= OS_API_V15 && !old.variants.length) {
    spec.variants = [{ name: DEFAULT_VARIANT, settings: variantSettings(l.template!, DEFAULT_VARIANT) }];
    variantsText = addVariantLine(l.variantsFile.text, DEFAULT_VARIANT).text;
  }
  // The answers keep the parameters below API 20: lib/parameters.sh still gives the scripts their
  // defaults (Ganeti passes no OSP_* there), and going back to 20 declares them again.
  const params = old.parameters;
  const defaults = params.map((p) => `${p.name}=${p.default !== undefined ? `'${p.default}'` : '(empty)'}`).join(', ');
  const notes: string[] = [];
  if (v < OS_API_V20) {
    parametersText = null;
    if (params.length && l.maxApi >= OS_API_V20) {
      notes.push(`Ganeti passes no parameters below API 20: the scripts now always use the defaults (${defaults}). 'ganeti-os bump-api 20' declares them again.`);
    }
  } else if (!l.parametersFile.exists) {
    parametersText = '';
    if (params.length) notes.push(`Declared again the parameters kept from API 20: ${params.map((p) => p.name).join(', ')}.`);
  }
  // variants.list is never removed: below API 15 the runtime still takes the default variant from it.
  const plan = work(maintenance(l, spec, { force: opts.force, variantsText, parametersText, keep: [OS_VARIANTS_FILE] })).plan;
  plan.notes.push(...notes);
  return plan;
}

function planForeign(l: Loaded, v: number, versions: number[]): Plan {
  const ops: PlanOp[] = [];
  const notes: string[] = [];
  const apiFile = readText(path.join(l.root, OS_API_FILE));
  ops.push(textOp(OS_API_FILE, apiFile, formatApiVersions(versions)));
  if (v >= OS_API_V15 && !l.variants.length) {
    ops.push(textOp(OS_VARIANTS_FILE, l.variantsFile, addVariantLine(l.variantsFile.text, DEFAULT_VARIANT).text));
    const reads = foreignVariantConfig(l);
    const dir = reads && reads.ext !== '.conf' ? undefined : foreignVariantsDir(l);
    const conf = dir ? path.join(dir, `${DEFAULT_VARIANT}.conf`) : undefined;
    if (reads && reads.ext !== '.conf') notes.push(`Its scripts read ${reads.dir ?? '$VARIANTS_DIR'}/${DEFAULT_VARIANT}${reads.ext}: write it by hand.`);
    if (conf && !readText(conf).exists) {
      ops.push({
        path: planPath(l.root, conf),
        kind: 'create',
        content: `# shellcheck shell=bash disable=SC2034\n# Variant '${DEFAULT_VARIANT}' of the ${l.name} OS definition, added by ganeti-os bump-api.\n`,
        mode: 0o644,
        realPath: conf,
      });
    }
    notes.push(`Added the variant '${DEFAULT_VARIANT}': the scripts of ${l.name} were not written by ganeti-os, so check that they accept OS_VARIANT=${DEFAULT_VARIANT}.`);
  }
  if (v >= OS_API_V20) {
    if (!l.parametersFile.exists) ops.push(textOp(OS_PARAMETERS_FILE, l.parametersFile, ''));
    const verify = path.join(l.root, OS_SCRIPT_VERIFY);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(verify);
    } catch {
      st = undefined;
    }
    if (!st) {
      const content = fs.readFileSync(path.join(TEMPLATES_DIR, 'common', 'standalone-verify.sh'), 'utf8');
      ops.push({ path: OS_SCRIPT_VERIFY, kind: 'create', content, mode: 0o755 });
      notes.push(`Added a verify script that accepts every parameter value: add checks for ${l.name}'s parameters to it by hand.`);
    } else if (!(st.mode & 0o100)) {
      notes.push(`${verify} is not executable, so Ganeti rejects the definition: it was not written by ganeti-os, so make it executable by hand (chmod 755).`);
    }
  } else if (l.maxApi >= OS_API_V20) {
    notes.push(`verify and parameters.list were left in place (ganeti-os did not write them); Ganeti ignores them below API 20, so remove them by hand if you like.`);
  }
  if (v > l.maxApi) {
    notes.push(`The scripts of ${l.name} were not written by ganeti-os: check that they handle interface version ${v} (OS_API_VERSION=${v}).`);
  } else if (v < OS_API_V15 && l.maxApi >= OS_API_V15) {
    notes.push(`The scripts of ${l.name} were not written by ganeti-os: check that they work with an empty OS_VARIANT.`);
  }
  return { root: l.root, ops, notes };
}
