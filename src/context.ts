/** What a command may touch of the outside world. Commands never read `process.*` themselves. */

export interface Logger {
  /** Narration for people: goes to stderr. */
  info(message: string): void;
  warn(message: string): void;
}

export interface Output {
  /** Results: goes to stdout. */
  write(text: string): void;
}

export interface Choice<T> {
  name: string;
  value: T;
  description?: string;
  checked?: boolean;
}

/** The questions a command may ask; the real one wraps inquirer, tests pass a fake. */
export interface Prompter {
  input(message: string, options?: { default?: string; validate?: (value: string) => true | string }): Promise<string>;
  select<T>(message: string, choices: Choice<T>[], defaultValue?: T): Promise<T>;
  checkbox<T>(message: string, choices: Choice<T>[], validate?: (values: T[]) => true | string): Promise<T[]>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
}

export interface Context {
  cwd: string;
  env: Record<string, string | undefined>;
  /** True only when stdin and stdout are terminals (and not disabled by flags or CI). */
  interactive: boolean;
  prompter: Prompter;
  log: Logger;
  out: Output;
  /** A transient status line (progress) on a terminal; absent when stderr is not one. */
  progress?: (line: string) => void;
  /** The process's standard input and output as byte streams (for `run --input -` / `--output -`). */
  stdio?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream };
  /** The effective user id (scripts run as root on a Ganeti node); absent when unknown. */
  uid?: number;
  /** An abort signal that fires on Ctrl-C (SIGINT), SIGTERM or SIGHUP; installs the handlers on first use. */
  interrupt?: () => AbortSignal;
}
