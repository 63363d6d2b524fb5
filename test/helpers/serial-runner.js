'use strict';
/**
 * jest's own runner, serial: the system lane's files run one at a time in the main process
 * (`isSerial`), whatever maxWorkers the unit lane runs with.
 */
const TestRunner = require('jest-runner').default ?? require('jest-runner');

class SerialRunner extends TestRunner {
  constructor(...args) {
    super(...args);
    this.isSerial = true;
  }
}

module.exports = SerialRunner;
