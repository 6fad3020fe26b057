import type { ImageTool, VmRuntime } from './port.js';

/** What the health route reports about the hypervisor side. */
export interface RuntimeInfo {
  /** The hypervisor's version, or null when it could not be asked. */
  version: string | null;
  accel: 'kvm' | 'tcg';
  accelReason: string;
  /** Computed on each call: rules can fail or be put back while the server runs. */
  guestIsolation(): { enforced: boolean; reason: string };
}

/** Everything the server gets from its hypervisor adapter, built once by the composition root. */
export interface Adapters {
  runtime: VmRuntime;
  images: ImageTool;
  info: RuntimeInfo;
}

/** Where an adapter keeps its files, and what it may open. */
export interface AdapterDirs {
  dataDir: string;
  run: string;
  isos: string;
}
