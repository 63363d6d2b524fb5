/** What a definition should contain: the answers every template renders from. */

export interface ParamSpec {
  name: string;
  description: string;
  /** Value the scripts see when Ganeti passes none. */
  default?: string;
  /** Accepted values; `verify` refuses any other. */
  choices?: string[];
  /** POSIX extended regular expression the whole value must match. */
  pattern?: string;
}

export interface VariantSpec {
  name: string;
  /** KEY=VALUE settings written into variants/<name>.conf. */
  settings: Record<string, string>;
}

export interface DefinitionSpec {
  name: string;
  template: string;
  /** Newest first, as written into ganeti_api_version. */
  apiVersions: number[];
  /** First is the default. Empty when the highest API is below 15. */
  variants: VariantSpec[];
  /** Only when the highest API is 20. */
  parameters: ParamSpec[];
}

export function maxApi(spec: Pick<DefinitionSpec, 'apiVersions'>): number {
  return Math.max(...spec.apiVersions);
}
