// A reader that goes away (`p11kit list-tokens | head -1`) is not a failure of ours. Node ignores
// SIGPIPE, so the next write to stdout fails with EPIPE as an 'error' event, which would end the
// process with a stack trace and status 1. Instead the rest of the output is dropped, the command
// still finishes (and finalizes what it initialized), and the status is the shell's for a writer
// killed by SIGPIPE, whatever the command set after the write.
const EXIT_SIGPIPE = 128 + 13;

export function tolerateBrokenStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    // What is still to be written would fail the same way: nobody reads it.
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.once('exit', () => (process.exitCode = EXIT_SIGPIPE));
  });
}
