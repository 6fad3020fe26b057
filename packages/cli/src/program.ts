/**
 * The `qemu-manager` command tree (noun first). run() parses one command line and returns the exit
 * status: 0 ok, 1 an API error (its message and code printed), 2 a usage or local setup error.
 */
import type {
  AutostartBody,
  BackupListEnvelope,
  BackupScheduleEnvelope,
  BackupScheduleListEnvelope,
  BackupTargetEnvelope,
  BackupTargetListEnvelope,
  CloneDiskBody,
  CloneVmBody,
  ConvertDiskBody,
  CreateBackupScheduleBody,
  CreateBackupTargetBody,
  DiskEnvelope,
  ImportBackupBody,
  ImportDiskBody,
  Retention,
  BackupTaskEnvelope,
  CreateBackupBody,
  CreateDiskBody,
  CreatedDiskEnvelope,
  CreateSnapshotBody,
  CreateTokenBody,
  CreatedToken,
  Disk,
  DiskListEnvelope,
  IsoEnvelope,
  IsoListEnvelope,
  MessageBody,
  ResizeDiskEnvelope,
  RestoreBackupBody,
  ShutdownBody,
  SnapshotListEnvelope,
  SnapshotTaskEnvelope,
  StartEnvelope,
  Task,
  TaskEnvelope,
  TaskListEnvelope,
  TokenListEnvelope,
  TokenScope,
  UpdateResourcesBody,
  Vm,
  VmEnvelope,
  VmListEnvelope,
} from '@qemu-manager/contract';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Api, ApiError, enc } from './api.js';
import { completionScript } from './completion.js';
import { ConfigError, resolveConfig } from './config.js';
import { bar, bytes, table } from './format.js';
import { hardwareSummary, registerIssue12 } from './images.js'; // images, hardware, templates, cloud-init (issue 12)
import { nicShowRows, registerNetworks } from './networks.js'; // networks, NICs, forwards (issue 11)

export interface Io {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  home: string;
  /** stderr is a terminal: progress is drawn. */
  isTTY: boolean;
  /** Ends `events` (tests); the process ends it with Ctrl-C. */
  signal?: AbortSignal;
}

interface Globals {
  url?: string;
  token?: string;
  json?: boolean;
}

const TASK_DONE = new Set(['succeeded', 'failed', 'cancelled']);
const ADMIN_CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../server/dist/cli.js');

function int(min: number) {
  return (v: string): number => {
    if (!/^[0-9]{1,12}$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`a whole number of at least ${min} is needed, got ${JSON.stringify(v)}`);
    return Number(v);
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('qemu-manager');
  program
    .description('Command line client of the QEMU Manager API')
    .option('--url <url>', 'server URL (env QM_URL; default http://127.0.0.1:5000)')
    .option('--token <token>', 'API token (env QM_TOKEN)')
    .option('--json', 'print the API answer as JSON (for scripts)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s, write) => write(s) })
    .showHelpAfterError('(add --help for usage)');

  const ctx = (cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const api = new Api(resolveConfig({ url: g.url, token: g.token }, io.env, io.home));
    return { api, json: g.json === true };
  };
  const print = (json: boolean, data: unknown, human: () => string) => io.out(json ? JSON.stringify(data, null, 2) + '\n' : human());

  /** A VM by name or id: the list is searched; otherwise the API's own answer for that id (its 404). */
  const vmOf = async (api: Api, ref: string): Promise<Vm> => {
    const { vms } = await api.get<VmListEnvelope>('/vms');
    return vms.find((v) => v.id === ref) ?? vms.find((v) => v.name === ref) ?? (await api.get<VmEnvelope>(`/vms/${enc(ref)}`)).vm;
  };
  const diskOf = async (api: Api, ref: string): Promise<Disk> => {
    const { disks } = await api.get<DiskListEnvelope>('/disks');
    return disks.find((d) => d.id === ref) ?? disks.find((d) => d.name === ref) ?? (await api.get<{ disk: Disk }>(`/disks/${enc(ref)}`)).disk;
  };

  /** Polls a task to its end; a bar on stderr when it is a terminal. Fails (exit 1) unless it succeeded. */
  const waitTask = async (api: Api, id: string): Promise<Task> => {
    let task: Task;
    for (;;) {
      task = (await api.get<TaskEnvelope>(`/tasks/${enc(id)}`)).task;
      if (io.isTTY) io.err(bar(`${task.kind} ${task.status}`.padEnd(24), task.progress));
      if (TASK_DONE.has(task.status)) break;
      await sleep(250);
    }
    if (io.isTTY) io.err('\n');
    if (task.status !== 'succeeded') throw new ApiError(`task ${task.id} (${task.kind}) ${task.status}${task.error ? `: ${task.error}` : ''}`, task.status === 'cancelled' ? 'TASK_CANCELLED' : 'TASK_FAILED', 0);
    return task;
  };
  /** What a command that starts a task prints: the task (or, with --wait, the task at its end). */
  const taskStarted = async (api: Api, json: boolean, task: Task, wait: boolean | undefined, what: string) => {
    const t = wait ? await waitTask(api, task.id) : task;
    print(json, { task: t }, () => (wait ? `${what}: done (task ${t.id})\n` : `${what}: task ${t.id} ${t.status} (qemu-manager task wait ${t.id})\n`));
  };

  /** A file's size, or a usage error (exit 2) when it cannot be read. */
  const fileSize = (file: string): number => {
    try {
      return fs.statSync(file).size;
    } catch (err) {
      throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
    }
  };
  /** Streams a file as the raw body of a PUT; a progress bar on stderr when it is a terminal. */
  const upload = async <T>(api: Api, p: string, file: string, size: number, label: string): Promise<T> => {
    let sent = 0;
    const stream = fs.createReadStream(file);
    if (io.isTTY) {
      stream.on('data', (chunk) => {
        sent += chunk.length;
        io.err(bar(`upload ${label}`.slice(0, 24).padEnd(24), size ? sent / size : 1));
      });
    }
    const res = await api.fetch('PUT', p, {
      body: Readable.toWeb(stream) as unknown as BodyInit,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      duplex: 'half',
    });
    if (io.isTTY) io.err('\n');
    return (await res.json()) as T;
  };

  const vmRows = (vms: Vm[]) =>
    table(
      ['NAME', 'STATUS', 'CPUS', 'MEMORY', 'VNC', 'PID', 'ID'],
      vms.map((v) => [v.name, v.status, v.cpus, `${v.memory} MiB`, v.vnc_port, v.pid, v.id]),
    );

  // ---- vm
  const vm = program.command('vm').description('virtual machines');
  vm.command('ls')
    .description('list VMs')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<VmListEnvelope>('/vms');
      print(json, data, () => vmRows(data.vms));
    });
  vm.command('show <vm>')
    .description('show one VM (name or id)')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      print(json, { vm: v }, () =>
        table(
          ['FIELD', 'VALUE'],
          [
            ['name', v.name],
            ['id', v.id],
            ['status', v.status],
            ['cpus', v.cpus],
            ['memory', `${v.memory} MiB`],
            ['vnc', v.vnc_port],
            ['mac', v.mac],
            ['hardware', hardwareSummary(v)],
            ['iso', v.iso],
            ['pid', v.pid],
            ['started', v.startedAt],
            ['created', v.createdAt],
            ...v.disks.map((d, i) => [`disk${i}`, `${d.path} (${d.format})`]),
            ...nicShowRows(v),
          ],
        ),
      );
    });
  vm.command('start <vm>')
    .description('start a VM')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      const data = await api.json<StartEnvelope>('POST', `/vms/${enc(v.id)}/start`);
      print(json, data, () => `started ${data.vm.name} (pid ${data.vm.pid ?? '-'}, VNC ${data.vm.vnc_port})\n`);
    });
  vm.command('stop <vm>')
    .description('power a VM off at once')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      const data = await api.json<MessageBody>('POST', `/vms/${enc(v.id)}/stop`);
      print(json, data, () => `${data.message}\n`);
    });
  for (const verb of ['shutdown', 'reboot'] as const) {
    vm.command(`${verb} <vm>`)
      .description(verb === 'shutdown' ? 'ACPI power button, waiting for the guest to stop' : 'shut the guest down and start it again')
      .option('--timeout <s>', 'seconds to wait (default 60)', int(1))
      .option('--force', 'power off if the guest has not stopped by the timeout')
      .action(async (ref: string, o: { timeout?: number; force?: boolean }, cmd: Command) => {
        const { api, json } = ctx(cmd);
        const v = await vmOf(api, ref);
        const body: ShutdownBody = { ...(o.timeout !== undefined ? { timeout: o.timeout } : {}), ...(o.force ? { force: true } : {}) };
        // shutdown answers { vm }, reboot { vm, command } (the new start).
        const data = await api.json<VmEnvelope | StartEnvelope>('POST', `/vms/${enc(v.id)}/${verb}`, body);
        print(json, data, () => `${data.vm.name}: ${data.vm.status}\n`);
      });
  }
  vm.command('rm <vm>')
    .description('delete a VM (its disks are kept)')
    .option('--force', 'power a running VM off first')
    .action(async (ref: string, o: { force?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      const data = await api.json<MessageBody>('DELETE', `/vms/${enc(v.id)}${o.force ? '?force=true' : ''}`);
      print(json, data, () => `${data.message}\n`);
    });

  vm.command('set <vm>')
    .description('change CPUs and/or memory (stopped VM)')
    .option('--cpus <n>', 'virtual CPUs', int(1))
    .option('--memory <mib>', 'memory in MiB', int(1))
    .action(async (ref: string, o: { cpus?: number; memory?: number }, cmd: Command) => {
      if (o.cpus === undefined && o.memory === undefined) throw new CommanderError(2, 'qemu-manager.usage', 'error: give --cpus and/or --memory\n');
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      const body: UpdateResourcesBody = { ...(o.cpus !== undefined ? { cpus: o.cpus } : {}), ...(o.memory !== undefined ? { memory: o.memory } : {}) };
      const data = await api.json<VmEnvelope>('PATCH', `/vms/${enc(v.id)}/resources`, body);
      print(json, data, () => `${data.vm.name}: ${data.vm.cpus} CPU(s), ${data.vm.memory} MiB\n`);
    });

  vm.command('clone <vm> <new>')
    .description('copy a stopped VM and its disks (disks named <new>-disk<N>)')
    .option('--linked', 'linked clone: the new disks are thin overlays on the originals')
    .option('--wait', 'wait for the clone')
    .action(async (ref: string, name: string, o: { linked?: boolean; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      const body: CloneVmBody = { name, mode: o.linked ? 'linked' : 'full' };
      const data = await api.json<TaskEnvelope>('POST', `/vms/${enc(v.id)}/clone`, body);
      await taskStarted(api, json, data.task, o.wait, `clone ${v.name} -> ${name}`);
    });
  vm.command('autostart <vm>')
    .description('show or change whether a VM starts after a host boot, in which order, and the delay after it')
    .option('--on', 'start it after a host boot')
    .option('--off', 'do not start it by itself')
    .option('--order <n>', 'lower starts first (0-10000)', int(0))
    .option('--delay <s>', 'seconds to wait before the next VM (0-3600)', int(0))
    .action(async (ref: string, o: { on?: boolean; off?: boolean; order?: number; delay?: number }, cmd: Command) => {
      if (o.on && o.off) throw new CommanderError(2, 'qemu-manager.usage', 'error: give --on or --off, not both\n');
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, ref);
      let result = v;
      if (o.on || o.off || o.order !== undefined || o.delay !== undefined) {
        const body: AutostartBody = {
          enabled: o.on ? true : o.off ? false : v.autostart.enabled,
          order: o.order ?? v.autostart.order,
          delayS: o.delay ?? v.autostart.delayS,
        };
        result = (await api.json<VmEnvelope>('PUT', `/vms/${enc(v.id)}/autostart`, body)).vm;
      }
      const a = result.autostart;
      print(json, { vm: result }, () => `${result.name}: autostart ${a.enabled ? 'on' : 'off'}, order ${a.order}, delay ${a.delayS} s\n`);
    });

  // images, vm create/hardware/template/cloud-init (issue 12)
  registerIssue12(program, vm, { ctx, print, vmOf, waitTask, taskStarted, upload, fileSize });
  // networks, vm nic, vm forward (issue 11)
  registerNetworks(program, vm, { ctx, print, vmOf });

  // ---- disk
  const disk = program.command('disk').description('managed disk images');
  disk
    .command('ls')
    .description('list disks')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<DiskListEnvelope>('/disks');
      print(json, data, () =>
        table(
          ['NAME', 'SIZE', 'FORMAT', 'STATUS', 'ATTACHED', 'ID'],
          data.disks.map((d) => [d.name, `${d.size} GB`, d.format, d.status, d.attachedTo, d.id]),
        ),
      );
    });
  disk
    .command('create <name>')
    .description('create a disk image')
    .requiredOption('--size <gb>', 'size in GB', int(1))
    .addOption(new Option('--format <format>', 'image format').choices(['qcow2', 'raw', 'vmdk']).default('qcow2'))
    .option('--wait', 'wait for the image to be made')
    .action(async (name: string, o: { size: number; format: CreateDiskBody['format']; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const body: CreateDiskBody = { name, size: o.size, format: o.format };
      const data = await api.json<CreatedDiskEnvelope>('POST', '/disks', body);
      if (o.wait) await waitTask(api, data.task.id);
      const final = o.wait ? await diskOf(api, data.disk.id) : data.disk;
      print(json, { disk: final, task: data.task }, () => `disk ${final.name} (${final.id}) ${final.status}\n`);
    });
  disk
    .command('attach <vm> <disk>')
    .description('attach a disk (name, id or image path) to a VM')
    .addOption(new Option('--format <format>', 'format of an external image').choices(['qcow2', 'raw', 'vmdk']))
    .action(async (vmRef: string, diskRef: string, o: { format?: Disk['format'] }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const { disks } = await api.get<DiskListEnvelope>('/disks');
      const d = disks.find((x) => x.id === diskRef) ?? disks.find((x) => x.name === diskRef);
      const data = await api.json<VmEnvelope>('POST', `/vms/${enc(v.id)}/disks/attach`, { diskPath: d?.path ?? diskRef, ...(o.format ? { format: o.format } : {}) });
      print(json, data, () => `${data.vm.name}: ${data.vm.disks.length} disk(s)\n`);
    });
  disk
    .command('detach <vm> <disk>')
    .description('detach a disk (name, id or image path) from a VM')
    .action(async (vmRef: string, diskRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const { disks } = await api.get<DiskListEnvelope>('/disks');
      const d = disks.find((x) => x.id === diskRef) ?? disks.find((x) => x.name === diskRef);
      const data = await api.json<VmEnvelope>('POST', `/vms/${enc(v.id)}/disks/detach`, { diskPath: d?.path ?? diskRef });
      print(json, data, () => `${data.vm.name}: ${data.vm.disks.length} disk(s)\n`);
    });
  disk
    .command('rm <disk>')
    .description('delete a disk and its image')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const d = await diskOf(api, ref);
      const data = await api.json<MessageBody>('DELETE', `/disks/${enc(d.id)}`);
      print(json, data, () => `${data.message}\n`);
    });
  disk
    .command('resize <disk>')
    .description('grow a disk')
    .requiredOption('--size <gb>', 'new size in GB', int(1))
    .option('--wait', 'wait for the resize')
    .action(async (ref: string, o: { size: number; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const d = await diskOf(api, ref);
      const data = await api.json<ResizeDiskEnvelope>('POST', `/disks/${enc(d.id)}/resize`, { size: o.size });
      await taskStarted(api, json, data.task, o.wait, `resize ${d.name}`);
    });

  disk
    .command('upload <name> <file>')
    .description('upload a raw, qcow2 or vmdk image as a new managed disk')
    .action(async (name: string, file: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const size = fileSize(file);
      const data = await upload<DiskEnvelope>(api, `/disks/upload/${enc(name)}`, file, size, name);
      print(json, data, () => `uploaded disk ${data.disk.name} (${data.disk.format}, ${data.disk.size} GB, ${data.disk.id})\n`);
    });
  disk
    .command('clone <disk> <new>')
    .description('copy a disk into a new managed disk')
    .option('--linked', 'a thin qcow2 overlay on the original instead of a full copy')
    .option('--wait', 'wait for the copy')
    .action(async (ref: string, name: string, o: { linked?: boolean; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const d = await diskOf(api, ref);
      const body: CloneDiskBody = { name, mode: o.linked ? 'linked' : 'full' };
      const data = await api.json<TaskEnvelope>('POST', `/disks/${enc(d.id)}/clone`, body);
      await taskStarted(api, json, data.task, o.wait, `clone ${d.name} -> ${name}`);
    });
  disk
    .command('import <name> <url>')
    .description('download an image (raw, qcow2, vmdk or .ova) from an http(s) URL into a new disk')
    .option('--sha256 <hex>', 'the SHA-256 the download must have')
    .addOption(new Option('--format <format>', 'format of the new disk (default qcow2)').choices(['qcow2', 'raw', 'vmdk']))
    .option('--wait', 'wait for the download and conversion')
    .action(async (name: string, url: string, o: { sha256?: string; format?: Disk['format']; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const body: ImportDiskBody = { name, url, ...(o.sha256 !== undefined ? { sha256: o.sha256 } : {}), ...(o.format ? { format: o.format } : {}) };
      const data = await api.json<TaskEnvelope>('POST', '/disks/import', body);
      await taskStarted(api, json, data.task, o.wait, `import ${name}`);
    });
  disk
    .command('convert <disk> <new>')
    .description('a new disk with this one\'s content in another format (this one stays)')
    .addOption(new Option('--format <format>', 'format of the new disk').choices(['qcow2', 'raw', 'vmdk']).makeOptionMandatory())
    .option('--wait', 'wait for the conversion')
    .action(async (ref: string, name: string, o: { format: Disk['format']; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const d = await diskOf(api, ref);
      const body: ConvertDiskBody = { name, format: o.format };
      const data = await api.json<TaskEnvelope>('POST', `/disks/${enc(d.id)}/convert`, body);
      await taskStarted(api, json, data.task, o.wait, `convert ${d.name} -> ${name}`);
    });

  // ---- task
  const task = program.command('task').description('long operations');
  task
    .command('ls')
    .description('list tasks, newest first')
    .option('--vm <vm>', 'only those of this VM (name or id)')
    .option('--limit <n>', 'at most this many', int(1))
    .action(async (o: { vm?: string; limit?: number }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const q = new URLSearchParams();
      if (o.vm) q.set('vm', (await vmOf(api, o.vm)).id);
      if (o.limit) q.set('limit', String(o.limit));
      const data = await api.get<TaskListEnvelope>(`/tasks${q.size ? `?${q}` : ''}`);
      print(json, data, () =>
        table(
          ['ID', 'KIND', 'STATUS', 'PROGRESS', 'CREATED', 'ERROR'],
          data.tasks.map((t) => [t.id, t.kind, t.status, `${Math.round(t.progress * 100)}%`, t.createdAt, t.error]),
        ),
      );
    });
  task
    .command('wait <id>')
    .description('wait for a task to end (exit 1 unless it succeeded)')
    .action(async (id: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const t = await waitTask(api, id);
      print(json, { task: t }, () => `task ${t.id} (${t.kind}) ${t.status}\n`);
    });
  task
    .command('cancel <id>')
    .description('cancel a task')
    .action(async (id: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.json<TaskEnvelope>('DELETE', `/tasks/${enc(id)}`);
      print(json, data, () => `task ${data.task.id} ${data.task.status}\n`);
    });

  // ---- iso
  const iso = program.command('iso').description('the ISO library');
  iso
    .command('ls')
    .description('list ISOs')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<IsoListEnvelope>('/isos');
      print(json, data, () => table(['NAME', 'SIZE', 'MODIFIED', 'PATH'], data.isos.map((i) => [i.name, bytes(i.size), i.modifiedAt, i.path])));
    });
  iso
    .command('upload <file>')
    .description('upload an ISO file to the library')
    .option('--name <name>', 'library name (default: the file name)')
    .action(async (file: string, o: { name?: string }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const size = fileSize(file);
      const name = o.name ?? path.basename(file);
      const data = await upload<IsoEnvelope>(api, `/isos/${enc(name)}`, file, size, name);
      print(json, data, () => `uploaded ${data.iso.name} (${bytes(data.iso.size)})\n`);
    });
  iso
    .command('mount <vm> <iso>')
    .description('insert an ISO (library name or path) into a VM')
    .action(async (vmRef: string, isoRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const { isos } = await api.get<IsoListEnvelope>('/isos');
      const found = isos.find((i) => i.name === isoRef);
      const data = await api.json<VmEnvelope>('POST', `/vms/${enc(v.id)}/iso/mount`, { isoPath: found?.path ?? isoRef });
      print(json, data, () => `${data.vm.name}: ${data.vm.iso ?? 'no ISO'}\n`);
    });
  iso
    .command('eject <vm>')
    .description("take the ISO out of a VM's drive")
    .action(async (vmRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const data = await api.json<VmEnvelope>('POST', `/vms/${enc(v.id)}/iso/unmount`);
      print(json, data, () => `${data.vm.name}: no ISO\n`);
    });

  // ---- snapshot
  const snap = program.command('snapshot').description('VM snapshots');
  snap
    .command('ls <vm>')
    .description("list a VM's snapshots")
    .action(async (vmRef: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const data = await api.get<SnapshotListEnvelope>(`/vms/${enc(v.id)}/snapshots`);
      print(json, data, () =>
        table(
          ['NAME', 'CURRENT', 'MEMORY', 'PARENT', 'CREATED', 'DESCRIPTION'],
          data.snapshots.map((s) => [s.name, s.current ? '*' : '', s.vmState ? bytes(s.sizeBytes) : 'no', s.parent, s.createdAt, s.description]),
        ),
      );
    });
  snap
    .command('create <vm> <name>')
    .description('take a snapshot')
    .option('--description <text>', 'what it is for')
    .option('--memory', 'save the RAM state too (running VM)')
    .option('--wait', 'wait for the snapshot')
    .action(async (vmRef: string, name: string, o: { description?: string; memory?: boolean; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const body: CreateSnapshotBody = { name, ...(o.description !== undefined ? { description: o.description } : {}), ...(o.memory ? { includeMemory: true } : {}) };
      const data = await api.json<SnapshotTaskEnvelope>('POST', `/vms/${enc(v.id)}/snapshots`, body);
      await taskStarted(api, json, data.task, o.wait, `snapshot ${name}`);
    });
  for (const [verb, method, suffix] of [
    ['revert', 'POST', '/revert'],
    ['rm', 'DELETE', ''],
  ] as const) {
    snap
      .command(`${verb} <vm> <name>`)
      .description(verb === 'revert' ? 'go back to a snapshot' : 'delete a snapshot')
      .option('--wait', 'wait for it')
      .action(async (vmRef: string, name: string, o: { wait?: boolean }, cmd: Command) => {
        const { api, json } = ctx(cmd);
        const v = await vmOf(api, vmRef);
        const data = await api.json<SnapshotTaskEnvelope>(method, `/vms/${enc(v.id)}/snapshots/${enc(name)}${suffix}`);
        await taskStarted(api, json, data.task, o.wait, `snapshot ${verb} ${name}`);
      });
  }

  // ---- backup
  const backup = program.command('backup').description('VM backups');
  backup
    .command('ls')
    .description('list backups')
    .option('--vm <vm>', 'only those of this VM (name or id)')
    .action(async (o: { vm?: string }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const q = o.vm ? `?vm=${enc((await vmOf(api, o.vm)).id)}` : '';
      const data = await api.get<BackupListEnvelope>(`/backups${q}`);
      print(json, data, () =>
        table(
          ['ID', 'VM', 'KIND', 'TARGET', 'SIZE', 'STATE', 'CREATED'],
          data.backups.map((b) => [b.id, b.vmName, b.kind, b.target, bytes(b.sizeBytes), b.state, b.createdAt]),
        ),
      );
    });
  backup
    .command('create <vm>')
    .description('back a VM up')
    .option('--target <name>', 'backup target (default: default)')
    .addOption(new Option('--mode <mode>', 'full or incremental').choices(['full', 'incremental']))
    .option('--wait', 'wait for the backup')
    .action(async (vmRef: string, o: { target?: string; mode?: CreateBackupBody['mode']; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await vmOf(api, vmRef);
      const body: CreateBackupBody = { ...(o.target ? { target: o.target } : {}), ...(o.mode ? { mode: o.mode } : {}) };
      const data = await api.json<BackupTaskEnvelope>('POST', `/vms/${enc(v.id)}/backups`, body);
      await taskStarted(api, json, data.task, o.wait, `backup ${v.name}`);
    });
  backup
    .command('restore <backup>')
    .description('restore a backup over its VM (--replace) or as a new VM (--as-new NAME)')
    .option('--as-new <name>', 'name of the new VM')
    .option('--replace', "replace the VM's disks")
    .option('--wait', 'wait for the restore')
    .action(async (id: string, o: { asNew?: string; replace?: boolean; wait?: boolean }, cmd: Command) => {
      if ((o.asNew === undefined) === (o.replace !== true)) {
        throw new CommanderError(2, 'qemu-manager.usage', 'error: give exactly one of --as-new NAME and --replace\n');
      }
      const { api, json } = ctx(cmd);
      const body: RestoreBackupBody = o.replace ? { as: 'replace' } : { as: 'new', name: o.asNew ?? '' };
      const data = await api.json<BackupTaskEnvelope>('POST', `/backups/${enc(id)}/restore`, body);
      await taskStarted(api, json, data.task, o.wait, `restore ${id}`);
    });
  for (const [verb, method, suffix] of [
    ['verify', 'POST', '/verify'],
    ['rm', 'DELETE', ''],
  ] as const) {
    backup
      .command(`${verb} <backup>`)
      .description(verb === 'verify' ? 'check a backup against its checksums' : 'delete a backup')
      .option('--wait', 'wait for it')
      .action(async (id: string, o: { wait?: boolean }, cmd: Command) => {
        const { api, json } = ctx(cmd);
        const data = await api.json<BackupTaskEnvelope>(method, `/backups/${enc(id)}${suffix}`);
        await taskStarted(api, json, data.task, o.wait, `backup ${verb} ${id}`);
      });
  }

  backup
    .command('import <path>')
    .description('list a backup directory that is inside a backup target (e.g. copied from another host)')
    .option('--wait', 'wait for the checks')
    .action(async (p: string, o: { wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const body: ImportBackupBody = { path: path.resolve(p) };
      const data = await api.json<BackupTaskEnvelope>('POST', '/backups/import', body);
      await taskStarted(api, json, data.task, o.wait, `backup import ${p}`);
    });
  const target = backup.command('target').description('directories backups are written to');
  target
    .command('ls')
    .description('list backup targets')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<BackupTargetListEnvelope>('/backup-targets');
      print(json, data, () =>
        table(
          ['NAME', 'PATH', 'FREE', 'TOTAL', 'BACKUPS', 'DEFAULT'],
          data.targets.map((t) => [t.name, t.path, bytes(t.freeBytes), bytes(t.totalBytes), t.backups, t.default ? 'yes' : '']),
        ),
      );
    });
  target
    .command('add <name> <path>')
    .description('add a backup target (an existing directory)')
    .action(async (name: string, p: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const body: CreateBackupTargetBody = { name, path: path.resolve(p) };
      const data = await api.json<BackupTargetEnvelope>('POST', '/backup-targets', body);
      print(json, data, () => `backup target ${data.target.name}: ${data.target.path}\n`);
    });
  target
    .command('rm <name>')
    .description('remove a backup target (its directory and files stay)')
    .action(async (name: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.json<MessageBody>('DELETE', `/backup-targets/${enc(name)}`);
      print(json, data, () => `${data.message}\n`);
    });
  const schedule = backup.command('schedule').description('backups made on a schedule');
  const scheduleOf = async (api: Api, ref: string) => {
    const { schedules } = await api.get<BackupScheduleListEnvelope>('/backup-schedules');
    return schedules.find((x) => x.id === ref) ?? schedules.find((x) => x.name === ref) ?? (await api.get<BackupScheduleEnvelope>(`/backup-schedules/${enc(ref)}`)).schedule;
  };
  schedule
    .command('ls')
    .description('list backup schedules')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<BackupScheduleListEnvelope>('/backup-schedules');
      print(json, data, () =>
        table(
          ['NAME', 'EVERY', 'AT', 'VMS', 'TARGET', 'ENABLED', 'NEXT RUN', 'LAST', 'ID'],
          data.schedules.map((x) => [x.name, x.every, x.at, x.vms === 'all' ? 'all' : x.vms.length, x.target, x.enabled ? 'yes' : 'no', x.nextRunAt, x.lastStatus, x.id]),
        ),
      );
    });
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  schedule
    .command('create <name>')
    .description('make a backup schedule (give --all or one --vm per VM, and at least one --keep-* rule)')
    .requiredOption('--every <when>', 'hourly, daily, weekly or a 5-field cron expression')
    .option('--at <time>', 'HH:MM for daily/weekly, MM for hourly (server local time)')
    .option('--vm <vm>', 'a VM to back up (name or id; repeat for more)', collect)
    .option('--all', 'every VM')
    .option('--target <name>', 'backup target (default: default)')
    .option('--keep-last <n>', 'keep the newest n backups', int(1))
    .option('--keep-hourly <n>', 'keep one backup of each of the last n hours', int(1))
    .option('--keep-daily <n>', 'keep one of each of the last n days', int(1))
    .option('--keep-weekly <n>', 'keep one of each of the last n weeks', int(1))
    .option('--keep-monthly <n>', 'keep one of each of the last n months', int(1))
    .option('--disabled', 'make it switched off')
    .action(async (name: string, o: { every: string; at?: string; vm?: string[]; all?: boolean; target?: string; keepLast?: number; keepHourly?: number; keepDaily?: number; keepWeekly?: number; keepMonthly?: number; disabled?: boolean }, cmd: Command) => {
      if (!o.all === !o.vm?.length) throw new CommanderError(2, 'qemu-manager.usage', 'error: give --all or at least one --vm, not both\n');
      const { api, json } = ctx(cmd);
      const retention: Retention = {};
      for (const k of ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const) if (o[k] !== undefined) retention[k] = o[k];
      const vms = o.all ? ('all' as const) : await Promise.all((o.vm ?? []).map(async (r) => (await vmOf(api, r)).id));
      const body: CreateBackupScheduleBody = {
        name,
        vms,
        every: o.every,
        retention,
        ...(o.at !== undefined ? { at: o.at } : {}),
        ...(o.target ? { target: o.target } : {}),
        ...(o.disabled ? { enabled: false } : {}),
      };
      const data = await api.json<BackupScheduleEnvelope>('POST', '/backup-schedules', body);
      print(json, data, () => `backup schedule ${data.schedule.name} (${data.schedule.id}), next run ${data.schedule.nextRunAt ?? '-'}\n`);
    });
  schedule
    .command('run <schedule>')
    .description('run a schedule now (name or id)')
    .option('--wait', 'wait for its backups')
    .action(async (ref: string, o: { wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const x = await scheduleOf(api, ref);
      const data = await api.json<BackupTaskEnvelope>('POST', `/backup-schedules/${enc(x.id)}/run`);
      await taskStarted(api, json, data.task, o.wait, `schedule ${x.name}`);
    });
  schedule
    .command('rm <schedule>')
    .description('delete a schedule (name or id; its backups stay)')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const x = await scheduleOf(api, ref);
      const data = await api.json<MessageBody>('DELETE', `/backup-schedules/${enc(x.id)}`);
      print(json, data, () => `${data.message}\n`);
    });

  // ---- token (API tokens, over the API; `admin create-token` makes one without the API)
  const tok = program.command('token').description('API tokens');
  tok
    .command('ls')
    .description('list API tokens')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<TokenListEnvelope>('/tokens');
      print(json, data, () =>
        table(
          ['NAME', 'SCOPE', 'CREATED', 'EXPIRES', 'LAST USED', 'REVOKED', 'ID'],
          data.tokens.map((t) => [t.name, t.scope, t.createdAt, t.expiresAt, t.lastUsedAt, t.revokedAt, t.id]),
        ),
      );
    });
  tok
    .command('create <name>')
    .description('create an API token (printed once)')
    .addOption(new Option('--scope <scope>', 'what it may do').choices(['read', 'admin']).makeOptionMandatory())
    .option('--expires-in <s>', 'seconds until it expires', int(1))
    .action(async (name: string, o: { scope: TokenScope; expiresIn?: number }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const body: CreateTokenBody = { name, scope: o.scope, ...(o.expiresIn !== undefined ? { expiresIn: o.expiresIn } : {}) };
      const data = await api.json<CreatedToken>('POST', '/tokens', body);
      print(json, data, () => `${data.token}\n`);
    });
  tok
    .command('rm <token>')
    .description('revoke an API token (name or id)')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const { tokens } = await api.get<TokenListEnvelope>('/tokens');
      const t = tokens.find((x) => x.id === ref) ?? tokens.find((x) => x.name === ref && x.revokedAt === null);
      const data = await api.json<MessageBody>('DELETE', `/tokens/${enc(t?.id ?? ref)}`);
      print(json, data, () => `${data.message}\n`);
    });

  // ---- events
  program
    .command('events')
    .description('follow the event stream, one line per event (--json: the event as JSON)')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const res = await api.fetch('GET', '/events', { headers: { accept: 'text/event-stream' }, ...(io.signal ? { signal: io.signal } : {}) });
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trimStart())
              .join('\n');
            if (!data) continue; // a comment (keep-alive)
            if (json) {
              io.out(data + '\n');
              continue;
            }
            const ev = JSON.parse(data) as { type: string; timestamp?: string; [k: string]: unknown };
            const { type, timestamp, ...rest } = ev;
            io.out(`${timestamp ?? new Date().toISOString()} ${type} ${JSON.stringify(rest)}\n`);
          }
        }
      } catch (err) {
        if (io.signal?.aborted) return;
        throw err;
      }
    });

  // ---- admin, service, host (local, on the data dir: the server's admin CLI runs them)
  const delegate = async (argv: string[]) => {
    if (!fs.existsSync(ADMIN_CLI)) throw new ConfigError(`${ADMIN_CLI} is not built: run npx tsc -b packages/server`);
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [ADMIN_CLI, ...argv], { stdio: 'inherit', env: io.env });
      child.on('error', reject);
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
    setExit(code);
  };
  const local = (parent: Command, verb: string, description: string, argv: (args: string[]) => string[]) =>
    parent
      .command(verb)
      .description(description)
      .allowUnknownOption()
      .allowExcessArguments()
      .helpOption(false)
      .argument('[args...]')
      .action((args: string[]) => delegate(argv(args)));
  const admin = program.command('admin').description('local admin commands on the data dir (as npm run admin)');
  local(admin, 'set-password', 'set the admin password (read from stdin)', (a) => ['set-password', ...a]);
  local(admin, 'create-token', 'create an API token: --name N --scope admin|read [--expires-in S]', (a) => ['create-token', ...a]);
  const service = program.command('service').description('the systemd units (as npm run admin -- service …)');
  local(service, 'install', 'write and enable the units: [--user NAME] [--root DIR]', (a) => ['service', 'install', ...a]);
  local(service, 'uninstall', 'disable and remove the units: [--root DIR]', (a) => ['service', 'uninstall', ...a]);
  const host = program.command('host').description('the host (as npm run admin -- host …)');
  local(host, 'shutdown-vms', 'shut every running VM down gracefully, then power off the rest: [--timeout S]', (a) => ['host', 'shutdown-vms', ...a]);

  // ---- completion
  program
    .command('completion')
    .description('print a shell completion script: source <(qemu-manager completion bash)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      io.out(completionScript(program, shell));
    });

  return program;
}

/** Runs one command line (argv without node and the script) and returns the exit status. */
export async function run(argv: string[], io: Io): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'qemu-manager.usage') io.err(err.message);
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ApiError) {
      io.err(`error: ${err.message} (${err.code})\n`);
      return 1;
    }
    if (err instanceof ConfigError) {
      io.err(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
