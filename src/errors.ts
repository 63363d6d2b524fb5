/** Typed errors: commands throw these; only `main` turns them into exit codes. */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUG = 70;
export const EXIT_CANCELLED = 130;

export class GanetiOsError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** Extra lines printed after the message (hints, lists of files). */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The command line was wrong: bad flag, bad name, missing answer without a terminal. */
export class UsageError extends GanetiOsError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT_USAGE, details);
  }
}

/** The request was understood but cannot be carried out (conflicts, unreadable files...). */
export class UserError extends GanetiOsError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT_FAILURE, details);
  }
}

/** The user cancelled an interactive prompt. */
export class CancelledError extends GanetiOsError {
  constructor() {
    super('cancelled', EXIT_CANCELLED);
  }
}

/** A command whose outcome is a failure that has already been reported (e.g. validate found problems). */
export class SilentFailure extends GanetiOsError {
  constructor(exitCode = EXIT_FAILURE) {
    super('', exitCode);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * `fn`, with Node's filesystem errors (anything carrying an errno code) turned into a UserError
 * naming the call, the file and the cause (exit 1, not 70). Used around planning, which writes
 * nothing; a promise `fn` returns is handled the same way.
 */
export function withFsErrors<T>(root: string, fn: () => T): T {
  const convert = (err: unknown): never => {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof Error && !(err instanceof GanetiOsError) && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
      throw new UserError(`cannot work on ${root}: ${errorMessage(err)}; nothing was changed`);
    }
    throw err;
  };
  try {
    const r = fn();
    return (r instanceof Promise ? r.catch(convert) : r) as T;
  } catch (err) {
    return convert(err);
  }
}
