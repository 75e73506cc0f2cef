// `node --import ./test/helpers/record-modules.mjs ...`: writes every module the process loads to the file named by
// CDNV2_MODULE_LOG, one URL or path a line: ES modules as Node resolves them (a loader hook) and, at exit, the
// CommonJS modules in require's cache (packages such as @tensorflow/tfjs are CommonJS under Node).
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const log = process.env.CDNV2_MODULE_LOG;
if (!log) throw new Error('record-modules: set CDNV2_MODULE_LOG');
register('./record-modules-hooks.mjs', import.meta.url, { data: { log } });
const require = createRequire(import.meta.url);
process.on('exit', () => {
  appendFileSync(log, Object.keys(require.cache).map((f) => `${f}\n`).join(''));
});
