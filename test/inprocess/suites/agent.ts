/** The guest agent (issue 14): GET /api/vms/{id}/agent and POST /api/vms/{id}/shutdown { mode } over the fake runtime. */
import { AgentState } from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function agentSuite(): void {
  describe('guest agent', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });
    const running = async (name: string): Promise<string> => {
      const r = await s.api('POST', '/vms', { name, cpus: 1, memory: 128 });
      expect(r.status).toBe(201);
      const id = r.body.vm.id as string;
      expect((await s.api('POST', `/vms/${id}/start`)).status).toBe(200);
      return id;
    };
    const status = async (id: string) => (await s.api('GET', `/vms/${id}`)).body.vm.status as string;

    it('GET /agent: what the agent says while it answers; connected false otherwise; 404 for an unknown VM', async () => {
      const id = await running('agent-info');
      const none = await s.api('GET', `/vms/${id}/agent`);
      expect(none.status).toBe(200);
      expect(none.body).toEqual({ connected: false, lastSeen: null });
      s.runtime.agents.set(id, { version: '7.2.0', hostname: 'guest1', os: { name: 'Debian', version: '12', kernel: '6.1' }, interfaces: [{ name: 'eth0', mac: '52:54:00:01:02:03', ips: ['10.0.2.15/24'] }], fsinfo: [] });
      const r = await s.api('GET', `/vms/${id}/agent`);
      expect(r.status).toBe(200);
      expectShape(AgentState, r.body);
      expect(r.body).toMatchObject({ connected: true, hostname: 'guest1', interfaces: [{ name: 'eth0', ips: ['10.0.2.15/24'] }] });
      expectError(await s.api('GET', '/vms/nope/agent'), 'VM_NOT_FOUND', 404, /not found/i);
      expect((await s.api('POST', `/vms/${id}/stop`)).status).toBe(200);
      expect((await s.api('GET', `/vms/${id}/agent`)).body).toMatchObject({ connected: false });
    });

    it('shutdown: the agent when it answers (no ACPI press), mode acpi presses the button, mode agent without one is 409', async () => {
      const a = await running('agent-down');
      s.runtime.agents.set(a, {});
      const r = await s.api('POST', `/vms/${a}/shutdown`, {});
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(s.runtime.agentCalls).toContain(`shutdown ${a}`);
      expect(await status(a)).toBe('stopped');

      const b = await running('acpi-down');
      s.runtime.agents.set(b, {});
      expect((await s.api('POST', `/vms/${b}/shutdown`, { mode: 'acpi' })).status).toBe(200);
      expect(s.runtime.agentCalls).not.toContain(`shutdown ${b}`);
      expect(await status(b)).toBe('stopped');

      const c = await running('no-agent');
      expectError(await s.api('POST', `/vms/${c}/shutdown`, { mode: 'agent' }), 'AGENT_UNAVAILABLE', 409, /agent/i);
      expect(await status(c)).toBe('running');
      // default without an agent: the ACPI button
      expect((await s.api('POST', `/vms/${c}/shutdown`)).status).toBe(200);
      expect(await status(c)).toBe('stopped');
      expectError(await s.api('POST', `/vms/${c}/shutdown`, { mode: 'guest' }), 'VALIDATION', 400, /.+/);
    });
  });
}
