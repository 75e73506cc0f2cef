// `node --import <this file>`: appends the URL of every module the process resolves to $CDNV2_IMPORT_LOG, one per
// line, so a test can check which libraries a command or an entry point loads.
import { register } from 'node:module';

register('./record-imports-hooks.mjs', import.meta.url, { data: { log: process.env.CDNV2_IMPORT_LOG } });
