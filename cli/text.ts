// Text that comes from a file (model names, labels, provenance) printed safely: control characters, DEL, C1
// controls, bidirectional overrides and backslashes become escapes, so nothing a model file holds can move the
// cursor, colour the terminal or forge an output line. JSON output needs none of this: JSON.stringify escapes.

export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\\\u202a-\u202e\u2066-\u2069\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
