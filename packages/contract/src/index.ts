export * from './common.js';
export * from './vms.js';
export * from './disks.js';
export * from './system.js';
export * from './auth.js';
export * from './events.js';
export * from './tasks.js';
export * from './vm-states.js';
// disk resize (issue 10)
export * from './resize.js';
// snapshots (issue 10)
export * from './snapshots.js';
// clones and backing chains (issue 10)
export * from './clones.js';
// import and convert (issue 10)
export * from './import.js';
// backups (issue 13)
export * from './backups.js';
// backups: schedules and retention (issue 13)
export * from './retention.js';
// service and autostart (issue 15)
export * from './host.js';
// images and cloud-init (issue 12)
export * from './images.js';
export * from './cloud-init.js';
// serial console (issue 14)
export * from './serial.js';
// the guest agent (issue 14)
export * from './agent.js';
// metrics (issue 14)
export * from './metrics.js';
// alerts (issue 14)
export * from './notifications.js';
// networks (issue 11)
export * from './networks.js';
