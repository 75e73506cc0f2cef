// Exit codes shared by every subcommand (documented in README.md).
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;   // the work failed: bad model file, bad image, training diverged, ...
export const EXIT_USAGE = 2;     // bad command line: unknown option, missing argument, wrong type

/** Thrown for command-line mistakes that commander cannot see (a value of the wrong type, say); exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
