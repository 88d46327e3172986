/**
 * Text from tracers (service names, topics, tags, reasons) on its way to a terminal: a service
 * named `a\x1b]0;title\x07` must not retitle the window, clear the screen or forge a log line.
 */

// ECMA-48, in this order: CSI sequences (ESC [ or 8-bit CSI, parameters, intermediates, a final
// byte); control strings (OSC, DCS, SOS, PM, APC) up to BEL or ST, or to the end when unterminated,
// as a terminal would swallow them; any other escape sequence; then every lone C0, DEL and C1 code.
const CONTROL =
  /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[\x20-\x2f]*[\x30-\x7e]?|[\x00-\x1f\x7f-\x9f]/g

/** `text` without control characters and escape sequences: what is left prints as itself. */
export function printable(text: string): string {
  return text.replace(CONTROL, '')
}
