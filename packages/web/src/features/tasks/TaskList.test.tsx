// Server-side rendering of the task components (no DOM needed): what a user reads for each task.
import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { Task } from '@qemu-manager/contract';
import { qk, TASK_PANEL_LIMIT } from '../../api/queries';
import { disk, task, vm } from '../../test/fixtures';
import { TaskList } from './TaskList';
import { TasksButton, TasksPanel } from './TasksPanel';

function render(node: React.ReactNode, tasks: Task[] = []): string {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  qc.setQueryData(qk.vms, [vm()]);
  qc.setQueryData(qk.disks, [disk()]);
  qc.setQueryData(qk.taskList({ limit: TASK_PANEL_LIMIT }), tasks);
  return renderToStaticMarkup(<QueryClientProvider client={qc}>{node}</QueryClientProvider>);
}

/** The markup of one task's <li>. */
function item(html: string, id: string): string {
  const start = html.indexOf(`data-testid="task-${id}"`);
  expect(start).toBeGreaterThan(-1);
  const end = html.indexOf('</li>', start);
  return html.slice(start, end);
}

describe('TaskList', () => {
  const running = task({ id: 'run', status: 'running', progress: 0.25 });
  const done = task({ id: 'done', status: 'succeeded', progress: 1, bytesDone: 1024 ** 3, endedAt: '2025-11-28T14:00:05.000Z' });
  const failed = task({ id: 'bad', status: 'failed', progress: 0.4, error: 'qemu-img: No space left on device', endedAt: '2025-11-28T14:00:05.000Z' });
  const queued = task({ id: 'wait', kind: 'vm.clone', status: 'queued', progress: 0, bytesDone: 0, bytesTotal: null, startedAt: null, target: { vm: vm().id, disk: null } });

  it('shows kind, target, status, progress with bytes and a Cancel button for a running task', () => {
    const li = item(render(<TaskList tasks={[running]} />), 'run');
    expect(li).toContain('data-status="running"');
    expect(li).toContain('Create disk');
    expect(li).toContain('Disk alpha-disk');
    expect(li).toContain('aria-valuenow="25"');
    expect(li).toContain('25% · 256 MiB of 1 GiB');
    expect(li).toContain('Started');
    expect(li).toContain('data-testid="task-cancel"');
  });

  it('offers Cancel for a waiting task too, naming its VM', () => {
    const li = item(render(<TaskList tasks={[queued]} />), 'wait');
    expect(li).toContain('Clone machine');
    expect(li).toContain('Waiting');
    expect(li).toContain('Machine alpha');
    expect(li).toContain('Queued');
    expect(li).toContain('data-testid="task-cancel"');
  });

  it('a finished task has no Cancel button; a failed one keeps its bar and says why', () => {
    const html = render(<TaskList tasks={[done, failed]} />);
    const ok = item(html, 'done');
    expect(ok).toContain('Done');
    expect(ok).toContain('took 4 s');
    expect(ok).not.toContain('task-cancel');
    expect(ok).not.toContain('role="progressbar"');
    const bad = item(html, 'bad');
    expect(bad).toContain('Failed');
    expect(bad).toContain('aria-valuenow="40"');
    expect(bad).toContain('qemu-img: No space left on device');
    expect(bad).not.toContain('task-cancel');
  });

  it('in a disk’s own section, leaves out the target', () => {
    const li = item(render(<TaskList tasks={[running]} compact />), 'run');
    expect(li).not.toContain('Disk alpha-disk');
    expect(li).toContain('Create disk');
  });
});

describe('TasksButton', () => {
  it('shows how many tasks wait or run', () => {
    const html = render(<TasksButton open={false} onToggle={() => {}} />, [task({ id: 'a', status: 'running' }), task({ id: 'b', status: 'queued' }), task({ id: 'c', status: 'succeeded' })]);
    expect(html).toContain('data-running="2"');
    expect(html).toContain('data-testid="tasks-running-count">2<');
    expect(html).toContain('Long operations: 2 running');
  });
  it('shows no count when nothing runs', () => {
    const html = render(<TasksButton open={false} onToggle={() => {}} />, [task({ status: 'succeeded' })]);
    expect(html).toContain('data-running="0"');
    expect(html).not.toContain('tasks-running-count');
  });
});

describe('TasksPanel', () => {
  it('lists every task, or says there are none', () => {
    const html = render(<TasksPanel open onClose={() => {}} />, [task({ id: 'a' }), task({ id: 'b', status: 'succeeded' })]);
    expect(html).toContain('data-testid="tasks-panel"');
    expect(html).toContain('data-testid="task-a"');
    expect(html).toContain('data-testid="task-b"');
    expect(render(<TasksPanel open onClose={() => {}} />, [])).toContain('No tasks yet.');
    expect(render(<TasksPanel open={false} onClose={() => {}} />, [task()])).toBe('');
  });
});
