// The one import of the retention rules in the UI: the same pure function the server's schedules
// prune with, so the preview shows what a run would keep.
export { selectRetained } from '@qemu-manager/contract';
