/**
 * Two lanes (jest projects), both run by `npm test` (test/helpers/lanes.js decides which file
 * goes where):
 *   unit   — no root, no Debian packages: files in parallel, seconds, any user
 *            (`npm run test:unit`);
 *   system — files that call describeSystem: one at a time, after the unit lane, because they
 *            share loop devices, Ganeti's directories and package caches (`npm run test:system`).
 * The run ends with one list of what was skipped and why (test/helpers/summary-reporter.js).
 * @type {import('jest').Config}
 */
const { lanes } = require('./test/helpers/lanes');

const { unit, system } = lanes();
const escape = (p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const lane = (name, others, extra = {}) => ({
  displayName: name,
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...others.map((f) => `^${escape(f)}$`)],
  ...extra,
});

module.exports = {
  projects: [lane('unit', system), lane('system', unit, { runner: '<rootDir>/test/helpers/serial-runner.js' })],
  testSequencer: '<rootDir>/test/helpers/lane-sequencer.js',
  maxWorkers: '100%',
  testTimeout: 60000,
  verbose: true,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
};
