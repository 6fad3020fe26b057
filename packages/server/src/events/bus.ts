import { EventEmitter } from 'node:events';
import type { ServerEvent } from '@qemu-manager/contract';

/** In-process publish/subscribe of the changes clients see on GET /api/events. */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(ev: ServerEvent): void {
    this.emitter.emit('event', ev);
  }

  subscribe(fn: (ev: ServerEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
