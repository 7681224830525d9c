// Prints the plain closing line CI reads ("tests: N passed, N failed, N skipped").
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const skipped = numPendingTests + numTodoTests;
    process.stdout.write(`\ntests: ${numPassedTests} passed, ${numFailedTests} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
