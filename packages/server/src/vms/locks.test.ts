import { describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { OpLocks } from './locks.js';

describe('OpLocks', () => {
  it('refuses a second operation on the same VM with 409 VM_BUSY', () => {
    const locks = new OpLocks();
    const release = locks.acquire('a', 'start');
    let err: unknown;
    try {
      locks.acquire('a', 'start');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VM_BUSY');
    expect(() => locks.acquire('b', 'start')).not.toThrow();
    release();
    expect(() => locks.acquire('a', 'stop')).not.toThrow();
  });

  it('lets a power-off cut a graceful shutdown short, but nothing else', () => {
    const locks = new OpLocks();
    locks.acquire('a', 'shutdown');
    expect(() => locks.acquire('a', 'start')).toThrow(/shutdown is in progress/);
    const stop = locks.acquire('a', 'stop');
    expect(locks.current('a').sort()).toEqual(['shutdown', 'stop']);
    stop();
    stop(); // releasing twice is harmless
    expect(locks.current('a')).toEqual(['shutdown']);
  });

  it('releases after the wrapped function, even when it throws', async () => {
    const locks = new OpLocks();
    await expect(locks.with('a', 'reset', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(locks.current('a')).toEqual([]);
  });

  it('a reboot holds one lock from its shutdown to its start', () => {
    const locks = new OpLocks();
    const reboot = locks.hold('a', 'reboot');
    expect(() => locks.acquire('a', 'start')).toThrow(/reboot is in progress/);
    reboot.become('start'); // the start step: still one lock, never released in between
    expect(locks.current('a')).toEqual(['start']);
    expect(() => locks.acquire('a', 'start')).toThrow(/start is in progress/);
    // a power-off cuts a shutdown short, never a start
    expect(() => locks.acquire('a', 'stop')).toThrow(/start is in progress/);
    expect(reboot.cut).toBe(false);
    reboot.release();
    expect(locks.current('a')).toEqual([]);
  });

  it('tells a reboot that a power-off cut it short, and will not start beside that power-off', () => {
    const locks = new OpLocks();
    const reboot = locks.hold('a', 'reboot');
    const stop = locks.hold('a', 'stop');
    expect(reboot.cut).toBe(true);
    expect(() => reboot.become('start')).toThrow(/stop is in progress/);
    expect(locks.current('a').sort()).toEqual(['reboot', 'stop']);
    stop.release();
    reboot.become('start');
    expect(locks.current('a')).toEqual(['start']);
  });
});
