import { copy_f32 } from './memory';

// Channel shuffle: the (groups, channels/groups) plane grid is transposed. Whole planes move, so this is plane copies.

/** out[j*groups + g] = in[g*(channels/groups) + j]; out must not overlap input. */
export function channel_shuffle(input: usize, channels: i32, hw: i32, groups: i32, out: usize): void {
  const cpg = channels / groups, plane = <usize>hw << 2;
  for (let g = 0; g < groups; g++) {
    for (let j = 0; j < cpg; j++) {
      copy_f32(out + <usize>(j * groups + g) * plane, input + <usize>(g * cpg + j) * plane, hw);
    }
  }
}
