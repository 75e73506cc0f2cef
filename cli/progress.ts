// Progress of `cdnv2 eval` on stderr: a cli-progress bar on a terminal; elsewhere (logs, pipes) a plain line every
// 10 s, so short runs print nothing and long ones show they are alive.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

export function evalProgress(total: number, enabled = true, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || total <= 0) return { update() {}, stop() {} };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({ format: 'eval |{bar}| {value}/{total} images, ETA {eta_formatted}', stream, etaBuffer: 50 },
      cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return { update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  const start = performance.now();
  let last = start;
  return {
    update(done) {
      const now = performance.now();
      if (now - last < 10_000) return;
      last = now;
      stream.write(`eval: ${done}/${total} images, ${((now - start) / 1000).toFixed(0)} s\n`);
    },
    stop() {},
  };
}
