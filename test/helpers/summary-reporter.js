/**
 * A last line in the plain form CI reads ("jest: N passed, N failed, N skipped"), after jest's own
 * summary. Skipped system tests are named by the warnings printed where they were skipped.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
