// Integers as decimal text for messages and reports. The standard library's toString() links its general radix
// conversion and digit tables; this is all the command needs, and its 64 KiB budget is tight.

/** v in decimal, with a leading '-' when negative. */
export function dec(v: i64): string {
  let u: u64 = v < 0 ? <u64>(-v) : <u64>v;
  let s = '';
  do {
    s = String.fromCharCode(<i32>(48 + <i32>(u % 10))) + s;
    u /= 10;
  } while (u != 0);
  return v < 0 ? '-' + s : s;
}
