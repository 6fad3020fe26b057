/** Serial console (issue 14): the WebSocket URL; the ticket (POST /api/vms/:id/console { kind: "serial" }) admits one connection. */
export function serialUrl(vmId: string, ticket: string, loc: Pick<Location, 'protocol' | 'host'> = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/vms/${encodeURIComponent(vmId)}/serial?ticket=${encodeURIComponent(ticket)}`;
}
