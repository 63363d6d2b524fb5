/** The real prompter: inquirer, loaded only when a question is actually asked. */
import type { Choice, Prompter } from './context';
import { CancelledError } from './errors';

type Inquirer = typeof import('@inquirer/prompts');
let inquirer: Inquirer | undefined;
function load(): Inquirer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!inquirer) inquirer = require('@inquirer/prompts') as Inquirer;
  return inquirer;
}

async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError')) throw new CancelledError();
    throw err;
  }
}

export const inquirerPrompter: Prompter = {
  input: (message, options = {}) => guard(load().input({ message, default: options.default, validate: options.validate })),
  select: <T>(message: string, choices: Choice<T>[], defaultValue?: T) =>
    guard(load().select<T>({ message, choices: choices.map((c) => ({ name: c.name, value: c.value, description: c.description })), default: defaultValue })),
  checkbox: <T>(message: string, choices: Choice<T>[], validate?: (values: T[]) => true | string) =>
    guard(
      load().checkbox<T>({
        message,
        choices: choices.map((c) => ({ name: c.name, value: c.value, checked: c.checked })),
        validate: validate ? (items) => validate(items.map((i) => i.value)) : undefined,
      }),
    ),
  confirm: (message, defaultValue) => guard(load().confirm({ message, default: defaultValue })),
};

/** A prompter for runs without a terminal: any question is a bug (every question has a flag). */
export const noPrompter: Prompter = {
  input: () => Promise.reject(new Error('no terminal: cannot prompt')),
  select: () => Promise.reject(new Error('no terminal: cannot prompt')),
  checkbox: () => Promise.reject(new Error('no terminal: cannot prompt')),
  confirm: () => Promise.reject(new Error('no terminal: cannot prompt')),
};
