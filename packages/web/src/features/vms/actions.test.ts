import { describe, expect, it } from 'vitest';
import { VM_STATUSES, vmActionAllowed, type VmAction, type VmStatus } from '@qemu-manager/contract';
import {
  canAttachDisk, canChangeIso, canDelete, canDetachDisk, canEditResources, canOpenConsole, canPause,
  canReboot, canReset, canResume, canShutdown, canStart, canStop, isTransitional, powerActionsFor, primaryActionFor,
} from './actions';

const ALL: VmStatus[] = ['stopped', 'starting', 'running', 'paused', 'stopping'];
const allowed = (p: (s: VmStatus) => boolean) => ALL.filter(p);

describe('action predicates', () => {
  it('start only when stopped', () => expect(allowed(canStart)).toEqual(['stopped']));
  it('power off when running or paused', () => expect(allowed(canStop)).toEqual(['running', 'paused']));
  it('shutdown and reboot need a running guest', () => {
    expect(allowed(canShutdown)).toEqual(['running']);
    expect(allowed(canReboot)).toEqual(['running']);
  });
  it('reset when running or paused', () => expect(allowed(canReset)).toEqual(['running', 'paused']));
  it('pause/resume are opposites', () => {
    expect(allowed(canPause)).toEqual(['running']);
    expect(allowed(canResume)).toEqual(['paused']);
  });
  it('console while QEMU is up', () => expect(allowed(canOpenConsole)).toEqual(['running', 'paused']));
  it('resources and disks only when stopped', () => {
    expect(allowed(canEditResources)).toEqual(['stopped']);
    expect(allowed(canAttachDisk)).toEqual(['stopped']);
    expect(allowed(canDetachDisk)).toEqual(['stopped']);
  });
  it('ISO changes in every settled state', () => expect(allowed(canChangeIso)).toEqual(['stopped', 'running', 'paused']));
  it('delete only when stopped', () => expect(allowed(canDelete)).toEqual(['stopped']));
  it('knows the transitional states', () => expect(allowed(isTransitional)).toEqual(['starting', 'stopping']));
  it('offers nothing while a transition runs', () => {
    for (const s of ['starting', 'stopping'] as const) {
      expect(powerActionsFor(s)).toEqual([]);
      expect(canOpenConsole(s) || canEditResources(s) || canDelete(s)).toBe(false);
    }
  });
});

describe('powerActionsFor / primaryActionFor', () => {
  it('lists the fitting power actions in UI order', () => {
    expect(powerActionsFor('stopped')).toEqual(['start']);
    expect(powerActionsFor('running')).toEqual(['stop', 'shutdown', 'reboot', 'reset', 'pause']);
    expect(powerActionsFor('paused')).toEqual(['stop', 'reset', 'resume']);
  });
  it('picks one main action per state', () => {
    expect(primaryActionFor('stopped')).toBe('start');
    expect(primaryActionFor('running')).toBe('shutdown');
    expect(primaryActionFor('paused')).toBe('resume');
    expect(primaryActionFor('starting')).toBeNull();
    expect(primaryActionFor('stopping')).toBeNull();
  });
});

describe('the buttons follow the VM state table', () => {
  const buttons: Array<[string, (s: VmStatus) => boolean, VmAction[]]> = [
    ['start', canStart, ['start']],
    ['stop', canStop, ['stop']],
    ['shutdown', canShutdown, ['shutdown']],
    ['reboot', canReboot, ['reboot']],
    ['reset', canReset, ['reset']],
    ['pause', canPause, ['pause']],
    ['resume', canResume, ['resume']],
    ['console', canOpenConsole, ['console']],
    ['resources', canEditResources, ['configure']],
    ['attach', canAttachDisk, ['attachDisk']],
    ['detach', canDetachDisk, ['detachDisk']],
    ['iso', canChangeIso, ['mountIso', 'unmountIso']],
    ['delete', canDelete, ['delete']],
  ];
  it('never enables a button the server would refuse with 409', () => {
    for (const [name, enabled, actions] of buttons) {
      for (const s of VM_STATUSES) {
        if (enabled(s)) for (const a of actions) expect(vmActionAllowed(s, a), `${name} in ${s}`).toBe(true);
      }
    }
  });
  it('offers less than the server accepts only for the ACPI buttons of a paused guest and a power-off between states', () => {
    const fewer = buttons.flatMap(([name, enabled, actions]) =>
      VM_STATUSES.filter((s) => !enabled(s) && actions.every((a) => vmActionAllowed(s, a))).map((s) => `${name}:${s}`),
    );
    expect(fewer.sort()).toEqual(['reboot:paused', 'shutdown:paused', 'stop:starting', 'stop:stopping']);
  });
});
