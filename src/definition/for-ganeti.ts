/**
 * A definition as Ganeti's runner and instance model see it: loaded only when Ganeti would
 * accept it (_TryOSFromDisk's verdict), with the OS facts OSCoreEnv and the opcode checks need.
 */
import { UserError } from '../errors';
import type { OsInfo } from '../ganeti/environment';
import type { OsForInstance } from '../ganeti/instance';
import { OsDefinition, readDefinition, requireDirectory } from './model';

/** Read the definition in osDir; throws UserError when it is missing or Ganeti refuses it (its first error word for word). */
export function loadValidDefinition(osDir: string): OsDefinition {
  requireDirectory(osDir);
  const def = readDefinition(osDir);
  if (!def.verdict.valid) {
    throw new UserError(`Ganeti refuses this OS definition: ${def.verdict.error}`, [`(ganeti-os validate ${osDir} says more)`]);
  }
  return def;
}

/** What the instance model needs of a definition: name, highest API version, variants, parameter names. */
export function osForInstance(def: OsDefinition): OsForInstance {
  return { name: def.name, maxApiVersion: def.maxApiVersion ?? 0, variants: def.variants, parameters: def.parameterFields.map((f) => f[0]) };
}

/** What OSCoreEnv needs of a definition (objects.OS). */
export function osInfo(def: OsDefinition): OsInfo {
  return { name: def.name, apiVersions: def.apiVersions ?? [], variants: def.variants };
}
