/**
 * What the matrix (matrix.ts) tells whoever watches it: the console
 * (app/console.ts), a test's own observer, or nobody.
 */
import type { Classification } from "../core/classify.ts";
import type { KernelReport, RunRecord } from "../core/record.ts";
import type { TapEvent } from "../core/tap.ts";

/** A run as the console knows it before it ends. */
export interface JobInfo {
  id: string;
  label: string;
  description: string;
}

/** What the matrix tells whoever watches it. */
export interface RunObserver {
  /** Every job, before any starts. */
  start(jobs: readonly JobInfo[]): void;
  attemptStart(job: JobInfo, attempt: number): void;
  event(job: JobInfo, event: TapEvent): void;
  /** An attempt ended; `retry` says whether another follows. */
  attemptEnd(job: JobInfo, attempt: number, c: Classification, retry: boolean): void;
  runEnd(job: JobInfo, run: RunRecord): void;
  /** Everything is done. */
  end(report: KernelReport): void;
}

/** An observer that does nothing. */
export const silentObserver: RunObserver = {
  start() {},
  attemptStart() {},
  event() {},
  attemptEnd() {},
  runEnd() {},
  end() {},
};
