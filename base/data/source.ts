// A labelled image source read one image at a time (HWC uint8), so memory stays bounded by one batch of floats.
export interface ImageSource {
  readonly name: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly classes: number;
  /** Writes image i as HWC uint8 into out (length height*width*channels). */
  read(i: number, out: Uint8Array): void;
  label(i: number): number;
  /**
   * Image i as stored (HWC uint8, any size, already in `channels` channels), for sources whose images are resized
   * to the input (folders): the training augmentation crops it, and the wasm runtime's evaluation resizes it itself.
   */
  readOriginal?(i: number): { width: number; height: number; channels: number; data: Uint8Array };
  close(): void;
}

export class DataError extends Error {
  override name = 'DataError';
}

/** Restricts a source to its first n images (file order). */
export function limitSource(src: ImageSource, n: number | undefined): ImageSource {
  if (n === undefined || n >= src.count) return src;
  if (!Number.isInteger(n) || n <= 0) throw new DataError(`limit must be a positive integer, got ${n}`);
  return {
    name: src.name, count: n, height: src.height, width: src.width, channels: src.channels, classes: src.classes,
    read: (i, out) => src.read(i, out), label: (i) => src.label(i), close: () => src.close(),
    ...(src.readOriginal ? { readOriginal: (i: number) => src.readOriginal!(i) } : {}),
  };
}
