import { Type, type Static } from '@sinclair/typebox';
import { VmAutostart } from './vms.js';

/** `PUT /api/vms/{vm_id}/autostart` (extension, issue 15): the whole autostart setting. */
export const AutostartBody = VmAutostart;
export type AutostartBody = Static<typeof AutostartBody>;

/** `POST /api/host/shutdown-vms` (extension, issue 15). */
export const HostShutdownBody = Type.Object(
  {
    timeout: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 3600, description: 'Seconds the guests get to power off before the rest are powered off (default 120)' }),
    ),
  },
  { additionalProperties: false },
);
export type HostShutdownBody = Static<typeof HostShutdownBody>;
/** The body is optional: none, `null` or a HostShutdownBody. */
export const OptionalHostShutdownBody = Type.Union([HostShutdownBody, Type.Null()]);
export type OptionalHostShutdownBody = Static<typeof OptionalHostShutdownBody>;

/** How one VM ended in a host shutdown (the task's result lists every VM). */
export const HostShutdownOutcome = Type.Union([
  Type.Literal('shutdown'), // powered off through ACPI within the timeout
  Type.Literal('powered-off'), // did not, and was powered off at the timeout
  Type.Literal('was-stopped'), // was not running
  Type.Literal('failed'), // could be neither shut down nor powered off (see error)
]);
export type HostShutdownOutcome = Static<typeof HostShutdownOutcome>;
