// p11kit trace <command…>: runs another p11kit command in this process with every PKCS#11 call
// traced (ts/trace: decoded arguments, results, durations; PINs and secrets redacted), to
// stderr or to --trace-file. No child process: the command's PIN options stay in this process.
import { closeSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { setGlobalTrace, stderrSink, type TraceSink } from '../trace/index.js';
import { cliAction, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { openOutputFile } from './output-file.js';
import { hideCommandLine } from './pin.js';

interface TraceFlags {
  traceFile?: string;
}

/** A file sink written synchronously, so that lines keep call order and survive a crash. Private: it names tokens and objects. */
function fileSink(path: string): { sink: TraceSink; close(): void } {
  const fd = openOutputFile(path, 0o600, { private: true });
  return { sink: (line) => writeSync(fd, `${line}\n`), close: () => closeSync(fd) };
}

export function registerTraceCommand(program: Command, buildProgram: () => Command): void {
  program.enablePositionalOptions();
  program
    .command('trace')
    .description('run a p11kit command with every PKCS#11 call traced (arguments, results, durations; PINs and secrets redacted)')
    .argument('<command...>', 'the command and its arguments, e.g. list-tokens')
    .option('--trace-file <file>', 'write the trace to this file (mode 0600) instead of stderr')
    .passThroughOptions()
    .addHelpText('after', `\nExample: p11kit trace sign pkcs11:token=demo;object=k --pin-source pin.txt --in data.bin\n${EXIT_CODES_HELP}`)
    .action(cliAction(async (args: string[], flags: TraceFlags) => {
      hideCommandLine();
      let file: ReturnType<typeof fileSink> | undefined;
      try {
        file = flags.traceFile === undefined ? undefined : fileSink(flags.traceFile);
      } catch (e) {
        process.stderr.write(`p11kit: ${(e as Error).message}\n`);
        process.exitCode = EXIT.IO; // the trace file cannot be written: nothing runs untraced
        return;
      }
      setGlobalTrace(file?.sink ?? stderrSink);
      try {
        await buildProgram().name('p11kit trace').parseAsync(args, { from: 'user' });
      } finally {
        setGlobalTrace(undefined);
        file?.close();
      }
    }));
}
