import type { VmRuntime } from '../runtime/port.js';

/**
 * fsfreeze (issue 14): the guest's file systems frozen through its agent around the instant a
 * backup or a disk-only snapshot is taken, thawed right after, so the copy is what the guest had
 * flushed. Only when the agent answers; a freeze that fails is a note, never a failed backup. The
 * thaw always follows a freeze that worked, also when the operation failed.
 */
export interface FreezeWindow {
  before(): Promise<void>;
  after(): Promise<void>;
  /** The guest was frozen at the point in time. */
  readonly frozen: boolean;
}

export function freezeWindow(runtime: VmRuntime, vmId: string, notes: string[], log?: { warn(obj: object, msg: string): void }): FreezeWindow {
  let frozen = false;
  let holding = false;
  return {
    get frozen() {
      return frozen;
    },
    async before() {
      if (!runtime.agentFreeze || !runtime.agentStatus?.(vmId).connected) return;
      try {
        await runtime.agentFreeze(vmId);
        frozen = true;
        holding = true;
      } catch (err) {
        notes.push(`The guest's file systems were not frozen: ${(err as Error).message}`);
      }
    },
    async after() {
      if (!holding) return;
      holding = false;
      try {
        await runtime.agentThaw!(vmId);
      } catch (err) {
        // The guest stays frozen until its agent thaws: say so loudly, the guest's writes wait.
        notes.push(`The guest's file systems could not be thawed: ${(err as Error).message}`);
        log?.warn({ vmId, err: (err as Error).message }, 'guest agent thaw failed after a freeze');
      }
    },
  };
}
