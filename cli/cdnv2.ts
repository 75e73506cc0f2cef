#!/usr/bin/env node
// The one command-line entry point. Each area registers its own subcommands.
import { Command, CommanderError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';

function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    try {
      return JSON.parse(readFileSync(path.join(here, up, 'package.json'), 'utf8')).version as string;
    } catch { /* try the next level: dist/cli vs cli */ }
  }
  return '0.0.0';
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cdnv2')
    .description('Train, condense and run CondenseNetV2 image classifiers (WebAssembly SIMD runtime)')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError()
    .addHelpText('after', '\nExit codes: 0 success, 1 the work failed (missing or invalid model file, unreadable image, training\n' +
      'diverged), 2 usage error (unknown option, missing argument, bad value).');
  return program;
}

/**
 * The program with every subcommand. Registration modules import only what defining the options needs; each
 * action imports its heavy libraries (TensorFlow.js, vega, resvg, onnx) itself.
 */
export async function buildFullProgram(): Promise<Command> {
  const program = buildProgram();
  const registrations = [
    import('./runtime-cli.js'),
    import('./trainer-cli.js'),
    import('./converter-cli.js'),
    import('./onnx-cli.js'),
    import('./pytorch-cli.js'),
    import('./bench-cli.js'),
  ];
  for (const mod of await Promise.all(registrations)) mod.register(program);
  return program;
}

async function main(): Promise<void> {
  // `cdnv2 ... | head` closes stdout early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
    throw err;
  });
  const program = await buildFullProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every parse error is a usage error.
      process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_USAGE);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`cdnv2: ${err.message}\n`);
      process.exit(EXIT_USAGE);
    }
    process.stderr.write(`cdnv2: ${(err as Error).message}\n`);
    if (process.env.CDNV2_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(EXIT_FAILURE);
  }
}

/**
 * Whether this module is the program node was started with. npm runs an installed command through a symlink
 * (node_modules/.bin/cdnv2, a global bin), so both paths are resolved to the real file before comparing.
 */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  await main();
}
