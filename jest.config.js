/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // System tests share loop devices, /var/log/ganeti and a package cache: run files one at a time.
  maxWorkers: 1,
  testTimeout: 60000,
  verbose: true,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
};
