/**
 * Declaring an OS parameter (`ganeti-os add-param`): its line in parameters.list and, for a
 * definition ganeti-os wrote, its default and checks in lib/parameters.sh and verify.
 */
import { UsageError, UserError } from '../../errors';
import { OS_API_V20, OS_PARAMETERS_FILE, paramEnvName } from '../../ganeti/rules';
import { Edit, Loaded, maintenance, facts, mergeParam, parameterLineProblems, setParameterLine } from '../maintain';
import { textOp, work } from '../worker';
import type { Plan } from '../plan';
import type { DefinitionSpec, ParamSpec } from '../spec';
import { checkParamSpec } from '../validate-spec';

export interface AddParamEdit {
  /** The parameter as given: name and description always; default, choices and pattern only when given. */
  param: ParamSpec;
  force?: boolean;
}

/**
 * Declare `opts.param` in the loaded definition `l`, or change an existing parameter in what was
 * given. Returns the plan; writes nothing. Throws UsageError or UserError (nothing changed) for
 * an API without parameters, a name that reaches the scripts as an existing one's, lines of
 * parameters.list Ganeti mishandles, checks a definition ganeti-os did not write cannot apply,
 * or a result checkParamSpec refuses.
 */
export function addParam(l: Loaded, opts: AddParamEdit): Edit {
  const given = opts.param;
  const name = given.name;
  const description = given.description;
  let param: ParamSpec = given;
  if (l.maxApi < OS_API_V20) {
    throw new UserError(`${l.name} uses OS interface version ${l.maxApi}, which has no parameters (Ganeti reads parameters.list from version 20); nothing was changed`, [
      "Run 'ganeti-os bump-api 20' first, then add the parameter.",
    ]);
  }
  const clash = l.parameters.find((p) => p.name !== name && paramEnvName(p.name) === paramEnvName(name));
  if (clash) {
    throw new UsageError(`parameter '${name}' would reach the scripts as ${paramEnvName(name)}, like the existing '${clash.name}'; choose another name`);
  }
  const problems = parameterLineProblems(l.parametersFile.text);
  if (problems.length) {
    throw new UserError(`${l.parametersFile.abs} has lines Ganeti mishandles; fix them by hand first; nothing was changed`, problems.map((p) => `  line ${p.line}: ${JSON.stringify(p.text)}: ${p.problem}`));
  }
  const edit = setParameterLine(l.parametersFile.text, name, description);
  const existed = l.parameters.some((p) => p.name === name);

  let plan: Plan;
  if (l.provenance) {
    const old = l.spec!;
    const known = old.parameters.find((p) => p.name === name);
    // An existing parameter changes only in what was given: its other checks stay.
    if (known) {
      param = mergeParam(known, given);
      try {
        checkParamSpec(param);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        throw new UsageError(`${err.message}; nothing was changed`, [
          given.default !== undefined && given.choices === undefined && known.choices
            ? `'${name}' keeps its choices (${known.choices.join(', ')}): give --choices with the new default among them to change both.`
            : `'${name}' keeps what was not given (default, choices, pattern): give --default with --choices or --pattern to change them together.`,
        ]);
      }
    }
    // Choices with no default: the scripts would see '' when Ganeti passes no value, which
    // the choices refuse.
    if (param.choices && param.default === undefined) {
      throw new UsageError(`parameter ${name} has choices (${param.choices.join(', ')}) but no default; nothing was changed`, [
        `Give --default ${param.choices[0]} (or another of the choices): it is what the scripts see when an instance names no value.`,
      ]);
    }
    const parameters = known ? old.parameters.map((p) => (p.name === name ? param : p)) : [...old.parameters, param];
    const spec: DefinitionSpec = { ...old, parameters };
    plan = work(maintenance(l, spec, { force: opts.force, parametersText: edit.text })).plan;
  } else {
    if (param.default !== undefined || param.choices || param.pattern !== undefined) {
      throw new UsageError(`${l.name} was not written by ganeti-os: its scripts cannot apply --default, --choices or --pattern; nothing was changed`, [
        `Add the parameter without them, then handle ${paramEnvName(name)} in its scripts and check it in its verify script by hand.`,
      ]);
    }
    plan = {
      root: l.root,
      ops: [textOp(OS_PARAMETERS_FILE, l.parametersFile, edit.text)],
      notes: edit.result === 'same' ? [] : [`${l.name} was not written by ganeti-os: its scripts see the value as ${paramEnvName(name)}; check it in its verify script by hand.`],
    };
  }
  if (edit.droppedBlank) plan.notes.push(`Removed ${edit.droppedBlank} blank line(s) from parameters.list: Ganeti's parameter check crashes on them.`);

  const names = existed ? l.parameters.map((p) => p.name) : [...l.parameters.map((p) => p.name), name];
  const checks = [
    param.default !== undefined ? `default '${param.default}'` : undefined,
    param.choices ? `one of ${param.choices.join(', ')}` : undefined,
    param.pattern !== undefined ? `matching ${param.pattern}` : undefined,
  ].filter(Boolean);
  const what = `parameter '${name}'${checks.length ? ` (${checks.join('; ')})` : ''}`;
  return {
    plan,
    summary: existed ? `Updated ${what} of ${l.name}` : `Added ${what} to ${l.name}`,
    facts: { command: 'add-param', parameter: param, result: existed ? 'updated' : 'added', ...facts(l, l.apiVersions, l.variants, names) },
    warnings: [],
  };
}
