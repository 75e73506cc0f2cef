// TF.js backend selection: tfjs-node when installed (optional dependency), otherwise the pure-JS CPU backend.
import * as tf from '@tensorflow/tfjs';

export type BackendChoice = 'auto' | 'node' | 'cpu';

export async function selectBackend(choice: BackendChoice, log: (m: string) => void = () => {}): Promise<string> {
  if (choice !== 'cpu') {
    try {
      const mod = '@tensorflow/tfjs-node';
      await import(mod); // registers the 'tensorflow' backend
      if (await tf.setBackend('tensorflow')) { await tf.ready(); return 'tensorflow'; }
    } catch {
      if (choice === 'node') log('@tensorflow/tfjs-node is not installed; using the CPU backend');
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  // The CPU backend prints an advert for tfjs-node on first use; the backend in use is reported by the caller.
  const warn = console.warn;
  console.warn = () => {};
  try { tf.tensor([0]).dispose(); } finally { console.warn = warn; }
  return 'cpu';
}
