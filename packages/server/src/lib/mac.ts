/** A random, locally administered MAC in the 52:54:00 range VMs use; the caller keeps it unique. */
export function randomMac(random: (n: number) => Buffer): string {
  return `52:54:00:${[...random(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}
