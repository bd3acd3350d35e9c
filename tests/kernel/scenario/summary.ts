/** The counts of a scenario run and its closing line, `N passed, M failed, R retried`. */

/** Counts of one run. */
export interface ScenarioCounts {
  passed: number;
  failed: number;
  /** Probes sent a second time after getting no answer where one was expected. */
  retried: number;
}

/** The closing line of a run. */
export function summaryLine(counts: ScenarioCounts): string {
  return `${counts.passed} passed, ${counts.failed} failed, ${counts.retried} retried`;
}

/** Matches a closing line: passed, failed and retried counts. */
export const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) retried$/m;
