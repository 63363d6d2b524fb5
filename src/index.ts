export { main, run, processContext } from './main';
export type { Context, Prompter } from './context';
