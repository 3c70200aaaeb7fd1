#!/usr/bin/env node
// The p11kit executable. A PIN given on the command line (--pin-value, or pin-value= in a URI)
// is readable by every local user in /proc/PID/cmdline until the process overwrites its argv
// memory; so this file imports nothing, overwrites it (through the process title, which on
// Linux is that memory) and only then loads the command line proper. The window left is
// Node's own start-up. process.argv, a copy, keeps the arguments for the parser.
if (process.argv.slice(2).some((arg) => /pin-value/i.test(arg))) process.title = 'p11kit';
await import('./cli.js');
