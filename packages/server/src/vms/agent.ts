// The guest agent (issue 14): what the agent of a running VM says, through the runtime port.
import type { AgentState } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import type { VmRuntime } from '../runtime/port.js';
import { type VmContext, requireVm } from './context.js';

export class AgentService {
  constructor(private readonly ctx: Pick<VmContext, 'repo'> & { runtime: VmRuntime }) {}

  /** `{ connected: false, lastSeen }` when the VM does not run or its agent does not answer. */
  async state(id: string): Promise<AgentState> {
    requireVm(this.ctx as VmContext, id);
    const rt = this.ctx.runtime;
    const status = rt.agentStatus?.(id) ?? { connected: false, lastSeen: null };
    if (!rt.agentInfo || !rt.process(id)) return { connected: false, lastSeen: status.lastSeen };
    try {
      const info = await rt.agentInfo(id);
      return { ...info, ...(rt.agentStatus?.(id) ?? status), connected: true };
    } catch (err) {
      if (err instanceof AppError && (err.code === 'AGENT_UNAVAILABLE' || err.code === 'VM_NOT_RUNNING')) {
        return { connected: false, lastSeen: rt.agentStatus?.(id).lastSeen ?? status.lastSeen };
      }
      throw err;
    }
  }
}
