/**
 * Removing an OS parameter (`ganeti-os remove-param`): its line in parameters.list and, for a
 * definition ganeti-os wrote, its default and checks.
 */
import { UserError } from '../../errors';
import { OS_API_V20, OS_PARAMETERS_FILE, paramEnvName } from '../../ganeti/rules';
import { Edit, Loaded, maintenance, facts, parameterLineProblems, removeParameterLine } from '../maintain';
import { textOp, work } from '../worker';
import type { Plan } from '../plan';
import type { DefinitionSpec } from '../spec';

export interface RemoveParamEdit {
  name: string;
  force?: boolean;
}

/**
 * Remove parameter `opts.name` from the loaded definition `l`. Returns the plan; writes nothing.
 * Throws UserError (nothing changed) when it has no such parameter, when the parameter is the
 * template's own (unless `force`), or when parameters.list has lines Ganeti mishandles.
 */
export function removeParam(l: Loaded, opts: RemoveParamEdit): Edit {
  const name = opts.name;
  // Below API 20 a definition ganeti-os wrote keeps its parameters in the answers only (for their defaults).
  const hidden = l.provenance && l.maxApi < OS_API_V20 ? l.spec!.parameters : [];
  const known = [...l.parameters, ...hidden.filter((p) => !l.parameters.some((q) => q.name === p.name))];
  if (!known.some((p) => p.name === name)) {
    throw new UserError(`${l.name} has no parameter '${name}'; nothing was changed`, [`Its parameters: ${known.map((p) => p.name).join(', ') || '(none)'}`]);
  }
  // The template's own parameters are read by its scripts: without them (and their default)
  // every instance operation that needs the value fails.
  const own = l.template?.manifest.defaults.parameters.find((p) => p.name === name);
  if (own && !opts.force) {
    throw new UserError(`'${name}' is a parameter of the ${l.template!.manifest.name} template itself: its scripts read it, and without it (and its default${own.default !== undefined ? ` '${own.default}'` : ''}) they get an empty value and fail; nothing was changed`, [
      own.default !== undefined
        ? `To fix its value, keep it and set the default: ganeti-os add-param ${name} ${JSON.stringify(own.description)} --default VALUE.`
        : 'Keep it, or run again with --force if you changed the scripts not to need it.',
      'Run again with --force if you changed the scripts not to need it.',
    ]);
  }
  if (!l.parameters.some((p) => p.name === name)) {
    const spec: DefinitionSpec = { ...l.spec!, parameters: l.spec!.parameters.filter((p) => p.name !== name) };
    const plan = work(maintenance(l, spec, { force: opts.force })).plan;
    plan.notes.push(`Ganeti sees no parameters below API 20; the scripts no longer get a default for ${name}, and bump-api 20 will not declare it again.`);
    const names = spec.parameters.map((p) => p.name);
    return {
      plan,
      summary: `Removed parameter '${name}' from ${l.name}`,
      facts: { command: 'remove-param', parameter: name, ...facts(l, l.apiVersions, l.variants, []), keptParameters: names },
      warnings: [],
    };
  }
  const problems = parameterLineProblems(l.parametersFile.text).filter((p) => p.text.trim().split(/\s+/u)[0] !== name);
  if (problems.length) {
    throw new UserError(`${l.parametersFile.abs} has lines Ganeti mishandles; fix them by hand first; nothing was changed`, problems.map((p) => `  line ${p.line}: ${JSON.stringify(p.text)}: ${p.problem}`));
  }
  const edit = removeParameterLine(l.parametersFile.text, name);
  let plan: Plan;
  if (l.provenance) {
    const spec: DefinitionSpec = { ...l.spec!, parameters: l.spec!.parameters.filter((p) => p.name !== name) };
    plan = work(maintenance(l, spec, { force: opts.force, parametersText: edit.text })).plan;
  } else {
    plan = {
      root: l.root,
      ops: [textOp(OS_PARAMETERS_FILE, l.parametersFile, edit.text)],
      notes: [`${l.name} was not written by ganeti-os: remove what its scripts (verify included) do with ${paramEnvName(name)} by hand.`],
    };
  }
  if (edit.droppedBlank) plan.notes.push(`Removed ${edit.droppedBlank} blank line(s) from parameters.list: Ganeti's parameter check crashes on them.`);
  const names = l.parameters.map((p) => p.name).filter((n) => n !== name);
  return {
    plan,
    summary: `Removed parameter '${name}' from ${l.name}${names.length ? ` (parameters: ${names.join(', ')})` : ' (no parameters left)'}`,
    facts: { command: 'remove-param', parameter: name, ...facts(l, l.apiVersions, l.variants, names) },
    warnings: [],
  };
}
