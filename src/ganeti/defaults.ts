/** Ganeti's defaults (the generated table of Ganeti 3.0, defaults-3.0.ts). */
export * from './defaults-3.0';
