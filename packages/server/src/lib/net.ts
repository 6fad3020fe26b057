/** `::ffff:192.0.2.1` (an IPv4 client seen on a dual-stack socket) as `192.0.2.1`; anything else as is. */
export function unmapIPv4(addr: string): string {
  const m = addr.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  return m ? m[1]! : addr;
}
