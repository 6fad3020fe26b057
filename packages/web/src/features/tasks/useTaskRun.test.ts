import { describe, expect, it } from 'vitest';
import { newerTask } from '../../api/queries';
import { task } from '../../test/fixtures';
import { t } from '../../i18n';
import { resultId, taskFailure } from './useTaskRun';

describe('following a task from a dialog', () => {
  it('says why a task failed or that it was cancelled, nothing while it runs or after success', () => {
    expect(taskFailure(task({ status: 'failed', error: 'qemu-img: No space left on device' }))).toBe(t.storage.taskFailed('qemu-img: No space left on device'));
    expect(taskFailure(task({ status: 'cancelled' }))).toBe(t.storage.taskCancelled);
    expect(taskFailure(task({ status: 'running' }))).toBeNull();
    expect(taskFailure(task({ status: 'succeeded' }))).toBeNull();
    expect(taskFailure(undefined)).toBeNull();
  });
  it('prefers the version of a task that has ended, else the one further along', () => {
    const running = task({ status: 'running', progress: 0.5 });
    const done = task({ status: 'succeeded', progress: 1 });
    expect(newerTask(running, done)).toBe(done);
    expect(newerTask(done, running)).toBe(done);
    expect(newerTask(task({ progress: 0.2 }), running)).toBe(running);
    expect(newerTask(undefined, running)).toBe(running);
    expect(newerTask(task({ status: 'queued', progress: 0 }), task({ status: 'running', progress: 0 }))?.status).toBe('running');
  });
  it('reads the id a task made from its result, as an id or an object', () => {
    expect(resultId(task({ result: { vm: 'abc' } }), 'vm')).toBe('abc');
    expect(resultId(task({ result: { disk: { id: 'd1', name: 'x' } } }), 'disk')).toBe('d1');
    expect(resultId(task({ result: {} }), 'vm')).toBeNull();
    expect(resultId(task({ result: null }), 'vm')).toBeNull();
    expect(resultId(undefined, 'vm')).toBeNull();
  });
});
