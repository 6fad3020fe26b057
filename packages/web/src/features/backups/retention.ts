// The one import of the retention rules in the UI. The server's schedules use `selectRetained`
// from @qemu-manager/contract (contract/src/retention.ts); until that is on main this re-exports a
// local stand-in with the same signature. Swap this line for
//   export { selectRetained } from '@qemu-manager/contract';
export { selectRetained } from './retentionLocal';
