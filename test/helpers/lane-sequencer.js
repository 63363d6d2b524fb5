'use strict';
/**
 * jest's own order (failed first, then slowest first) within each lane, the unit lane first:
 * its seconds-long results come before the system lane's minutes.
 */
const Sequencer = require('@jest/test-sequencer').default ?? require('@jest/test-sequencer');

class LaneSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const lane = (t) => (t.context.config.displayName?.name === 'system' ? 1 : 0);
    return sorted.map((t, i) => [t, i]).sort((a, b) => lane(a[0]) - lane(b[0]) || a[1] - b[1]).map(([t]) => t);
  }
}

module.exports = LaneSequencer;
