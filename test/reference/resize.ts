// Plain reference of the official evaluation preprocessing (torchvision Resize(N) + CenterCrop on a PIL image):
// PIL's separable antialiased resampling (Resample.c) in float64, clamped to [0, 1] after each pass.
function filter(cubic: boolean, x: number): number {
  x = Math.abs(x);
  if (!cubic) return Math.max(0, 1 - x);
  const a = -0.5;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Weights of each output coordinate: [first source index, normalised weights]. */
function coefficients(cubic: boolean, inSize: number, outSize: number): [number, number[]][] {
  const scale = inSize / outSize;
  const fscale = Math.max(1, scale);
  const support = (cubic ? 2 : 1) * fscale;
  const out: [number, number[]][] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w: number[] = [];
    for (let i = lo; i < hi; i++) w.push(filter(cubic, (i - center + 0.5) / fscale));
    const sum = w.reduce((a, b) => a + b, 0);
    out.push([lo, w.map((v) => (sum ? v / sum : 0))]);
  }
  return out;
}

const clamp = (v: number): number => Math.min(1, Math.max(0, v));

/** HWC pixels in [0,1] -> CHW crop of the resized image, normalised; Python round-half-even crop offsets. */
export function officialPreprocess(px: Float64Array, w: number, h: number, ch: number, shorter: number, cubic: boolean,
  crop: number, mean: number[], std: number[]): Float64Array {
  const rw = w <= h ? shorter : Math.floor((shorter * w) / h);
  const rh = w <= h ? Math.floor((shorter * h) / w) : shorter;
  const roundHalfEven = (x: number): number => { const f = Math.floor(x); return x - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x); };
  const left = roundHalfEven((rw - crop) / 2), top = roundHalfEven((rh - crop) / 2);
  const cx = coefficients(cubic, w, rw), cy = coefficients(cubic, h, rh);
  const horiz = new Float64Array(rw * h * ch); // full resize, as PIL, then crop
  for (let y = 0; y < h; y++) for (let x = 0; x < rw; x++) for (let c = 0; c < ch; c++) {
    const [lo, ws] = cx[x]!;
    let s = 0;
    ws.forEach((wt, k) => { s += wt * px[(y * w + lo + k) * ch + c]!; });
    horiz[(y * rw + x) * ch + c] = clamp(s);
  }
  const out = new Float64Array(ch * crop * crop);
  for (let y = 0; y < crop; y++) for (let x = 0; x < crop; x++) for (let c = 0; c < ch; c++) {
    const [lo, ws] = cy[y + top]!;
    let s = 0;
    ws.forEach((wt, k) => { s += wt * horiz[((lo + k) * rw + x + left) * ch + c]!; });
    out[(c * crop + y) * crop + x] = (clamp(s) - mean[c]!) / std[c]!;
  }
  return out;
}
