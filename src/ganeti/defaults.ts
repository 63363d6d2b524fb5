/**
 * Ganeti's defaults, per supported release: what a freshly initialised cluster fills an instance
 * with and how it types command-line values. Each release's table is generated from that
 * release's own constants (defaults-3.0.ts, defaults-3.1.ts by scripts/gen-ganeti-defaults.py).
 *
 * What differs between them, 3.0.2 → 3.1.0~rc2 (the generated tables say it exactly):
 * - kvm: `disk_discard` defaults to 'ignore' (was 'default', a value 3.1 no longer has) and
 *   `vhost_net` to True (was False);
 * - xen-pvm, xen-hvm: the `xen_cmd` parameter is gone (3.1 only drives `xl`).
 * Everything else here (hooks PATH, backend and NIC defaults, NIC modes, file drivers, ...) is
 * the same in both: GANETI_DEFAULTS holds it, checked against every table when loaded.
 */
import type { GanetiRelease } from './releases';
import { DEFAULTS as DEFAULTS_3_0 } from './defaults-3.0';
import { DEFAULTS as DEFAULTS_3_1 } from './defaults-3.1';

export interface GanetiParamDefault {
  key: string;
  value: string | number | boolean | null;
  /** Python's str() of the value: what OSEnvironment exports. */
  str: string;
  /** constants.*_PARAMETER_TYPES: how utils.ForceDictType converts a given value. */
  type: string;
}

export interface GanetiDefaultsTable {
  /** constants.RELEASE_VERSION, e.g. "3.0.2". */
  ganetiVersion: string;
  hooksPath: string;
  defaultHypervisor: string;
  hypervisors: string[];
  hvDiskType: string;
  hvNicType: string;
  /** constants.HVC_DEFAULTS, per hypervisor, in Ganeti's order. */
  hv: Record<string, GanetiParamDefault[]>;
  be: GanetiParamDefault[];
  nic: Record<string, string>;
  nicModes: string[];
  defaultBridge: string;
  fileDrivers: string[];
  defaultFileDriver: string;
  valueTrue: string;
  valueFalse: string;
  diskRdwr: string;
  diskRdonly: string;
  macPrefix: string;
}

const TABLES: Record<GanetiRelease, GanetiDefaultsTable> = { '3.0': DEFAULTS_3_0, '3.1': DEFAULTS_3_1 };

/** The release's whole table (its version, and the hypervisor defaults that differ). */
export function ganetiDefaults(release: GanetiRelease): GanetiDefaultsTable {
  return TABLES[release];
}

/** What every supported release has alike: the table without its version and hypervisor defaults. */
export type GanetiCommonDefaults = Omit<GanetiDefaultsTable, 'ganetiVersion' | 'hv'>;

/**
 * The part of the tables that is the same in every supported release. Throws when loaded if a
 * regenerated table differs there: that value must then be looked up per release.
 */
function commonPart(): GanetiCommonDefaults {
  const strip = (t: GanetiDefaultsTable): GanetiCommonDefaults => {
    const { ganetiVersion: _v, hv: _hv, ...rest } = t;
    return rest;
  };
  const [first, ...others] = Object.values(TABLES).map(strip);
  for (const [key, value] of Object.entries(first)) {
    for (const o of others) {
      if (JSON.stringify(o[key as keyof GanetiCommonDefaults]) !== JSON.stringify(value)) {
        throw new Error(`Ganeti's '${key}' defaults differ between releases: look them up with ganetiDefaults(release)`);
      }
    }
  }
  return first;
}

export const GANETI_DEFAULTS: GanetiCommonDefaults = commonPart();
