/**
 * Issue 12's commands: `image …` (the library of ready disks), `vm create` with hardware options,
 * an image, a template or cloud-init, `vm hardware`, `vm template` and `vm cloud-init`.
 */
import type {
  BootDevice,
  CloudInitBody,
  CloudInitEnvelope,
  CreateImageBody,
  CreateVmBody,
  HardwareBody,
  ImageCatalogueEnvelope,
  ImageEnvelope,
  ImageListEnvelope,
  MessageBody,
  Task,
  TaskEnvelope,
  Vm,
  VmEnvelope,
} from '@qemu-manager/contract';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import { type Api, enc } from './api.js';
import { ConfigError } from './config.js';
import { bytes, table } from './format.js';

/** What program.ts lends these commands. */
export interface Kit {
  ctx: (cmd: Command) => { api: Api; json: boolean };
  print: (json: boolean, data: unknown, human: () => string) => void;
  vmOf: (api: Api, ref: string) => Promise<Vm>;
  waitTask: (api: Api, id: string) => Promise<Task>;
  taskStarted: (api: Api, json: boolean, task: Task, wait: boolean | undefined, what: string) => Promise<void>;
  upload: <T>(api: Api, p: string, file: string, size: number, label: string) => Promise<T>;
  fileSize: (file: string) => number;
}

const usage = (message: string) => new CommanderError(2, 'qemu-manager.usage', `error: ${message}\n`);

function int(min: number, max: number) {
  return (v: string): number => {
    if (!/^[0-9]{1,12}$/.test(v) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`a whole number from ${min} to ${max} is needed, got ${JSON.stringify(v)}`);
    return Number(v);
  };
}

const BOOT_DEVICES: readonly BootDevice[] = ['disk', 'cdrom', 'network'];
function bootOrder(v: string): BootDevice[] {
  const list = v.split(',').map((s) => s.trim());
  if (list.length === 0 || list.some((d) => !BOOT_DEVICES.includes(d as BootDevice)) || new Set(list).size !== list.length) {
    throw new InvalidArgumentError(`a comma-separated list of distinct devices from ${BOOT_DEVICES.join(', ')} is needed, got ${JSON.stringify(v)}`);
  }
  return list as BootDevice[];
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** A text file given on the command line, or a usage error (exit 2). */
function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

interface HardwareOpts {
  os?: Vm['osType'];
  firmware?: Vm['firmware'];
  secureBoot?: boolean;
  tpm?: boolean;
  machine?: Vm['machine'];
  diskBus?: Vm['diskBus'];
  nicModel?: Vm['nicModel'];
  boot?: BootDevice[];
  driversIso?: string;
}

/** The hardware options shared by `vm create` and `vm hardware`. */
function hardwareOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--firmware <firmware>', 'bios or uefi').choices(['bios', 'uefi']))
    .option('--secure-boot', 'UEFI Secure Boot (Microsoft-keyed variable store)')
    .option('--no-secure-boot', 'no Secure Boot')
    .option('--tpm', 'a TPM 2.0')
    .option('--no-tpm', 'no TPM')
    .addOption(new Option('--machine <machine>', 'machine type').choices(['q35', 'pc']))
    .addOption(new Option('--disk-bus <bus>', 'disk bus').choices(['virtio', 'sata', 'scsi']))
    .addOption(new Option('--nic-model <model>', 'NIC model').choices(['virtio', 'e1000e', 'rtl8139']))
    .option('--boot <devices>', 'boot order, e.g. cdrom,disk', bootOrder)
    .option('--drivers-iso <path>', 'a second, read-only CD-ROM (e.g. virtio-win); "none" removes it');
}

function hardwareBody(o: HardwareOpts): HardwareBody {
  return {
    ...(o.os !== undefined ? { osType: o.os } : {}),
    ...(o.firmware !== undefined ? { firmware: o.firmware } : {}),
    ...(o.secureBoot !== undefined ? { secureBoot: o.secureBoot } : {}),
    ...(o.tpm !== undefined ? { tpm: o.tpm } : {}),
    ...(o.machine !== undefined ? { machine: o.machine } : {}),
    ...(o.diskBus !== undefined ? { diskBus: o.diskBus } : {}),
    ...(o.nicModel !== undefined ? { nicModel: o.nicModel } : {}),
    ...(o.boot !== undefined ? { bootOrder: o.boot } : {}),
    ...(o.driversIso !== undefined ? { driversIso: o.driversIso === 'none' ? null : o.driversIso } : {}),
  };
}

interface CloudInitOpts {
  hostname?: string;
  user?: string;
  passwordFile?: string;
  sshKey?: string[];
  userData?: string;
  networkConfig?: string;
}

function cloudInitOptions(cmd: Command): Command {
  return cmd
    .option('--hostname <name>', 'cloud-init: the guest\'s host name')
    .option('--user <name>', 'cloud-init: a user to create (with sudo)')
    .option('--password-file <file>', 'cloud-init: the user\'s password, first line of this file (stored hashed)')
    .option('--ssh-key <file>', 'cloud-init: authorized SSH public keys, one per line (repeatable)', collect)
    .option('--user-data <file>', 'cloud-init: a #cloud-config document')
    .option('--network-config <file>', 'cloud-init: a network-config document');
}

/** The cloud-init body the options give, or null when none was given. */
function cloudInitBody(o: CloudInitOpts): CloudInitBody | null {
  const body: CloudInitBody = {
    ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.passwordFile !== undefined ? { password: readText(o.passwordFile).split(/\r?\n/)[0] ?? '' } : {}),
    ...(o.sshKey !== undefined
      ? { sshAuthorizedKeys: o.sshKey.flatMap((f) => readText(f).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))) }
      : {}),
    ...(o.userData !== undefined ? { userData: readText(o.userData) } : {}),
    ...(o.networkConfig !== undefined ? { networkConfig: readText(o.networkConfig) } : {}),
  };
  return Object.keys(body).length > 0 ? body : null;
}

/** "UEFI · Secure Boot · TPM 2.0"-style summary of a VM's hardware. */
export function hardwareSummary(v: Vm): string {
  return [
    v.firmware === 'uefi' ? 'UEFI' : 'BIOS',
    ...(v.secureBoot ? ['Secure Boot'] : []),
    ...(v.tpm ? ['TPM 2.0'] : []),
    v.machine,
    `${v.diskBus} disks`,
    `${v.nicModel} NIC`,
    `boot ${v.bootOrder.join(',')}`,
    ...(v.template ? ['template'] : []),
    ...(v.cloudInit ? ['cloud-init'] : []),
  ].join(' · ');
}

export function registerIssue12(program: Command, vm: Command, kit: Kit): void {
  const { ctx, print } = kit;

  // ---- vm create (v1 body, plus hardware, an image, a template, cloud-init)
  cloudInitOptions(
    hardwareOptions(
      vm
        .command('create <name>')
        .description('define a VM (empty, from an image, or from a template)')
        .option('--cpus <n>', 'virtual CPUs (required unless --template)', int(1, 4096))
        .option('--memory <mib>', 'memory in MiB (required unless --template)', int(1, 2 ** 30))
        .addOption(new Option('--os <type>', 'preset: linux, windows or other').choices(['linux', 'windows', 'other'])),
    )
      .option('--image <name>', 'first disk: a copy of this library image')
      .option('--disk-size <gb>', 'with --image: grow the copy to this many GB', int(1, 65536))
      .option('--full', 'with --image: a full copy instead of a linked overlay')
      .option('--template <vm>', 'a linked clone of this template (name or id)'),
  )
    .option('--network <network>', 'the first NIC\'s network, name or id (default user)')
    .option('--wait', 'with --image or --template: wait for the VM to be made')
    .action(async (name: string, o: HardwareOpts & CloudInitOpts & { cpus?: number; memory?: number; image?: string; diskSize?: number; full?: boolean; template?: string; network?: string; wait?: boolean }, cmd: Command) => {
      if (o.template === undefined && (o.cpus === undefined || o.memory === undefined)) throw usage('give --cpus and --memory (or --template)');
      if (o.template !== undefined && o.image !== undefined) throw usage('give --image or --template, not both');
      if ((o.diskSize !== undefined || o.full) && o.image === undefined) throw usage('--disk-size and --full need --image');
      const { api, json } = ctx(cmd);
      const template = o.template !== undefined ? await kit.vmOf(api, o.template) : null;
      const cloudInit = cloudInitBody(o);
      const body: CreateVmBody = {
        name,
        ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
        ...(o.memory !== undefined ? { memory: o.memory } : {}),
        ...hardwareBody(o),
        ...(o.image !== undefined ? { image: o.image, ...(o.diskSize !== undefined ? { diskSize: o.diskSize } : {}), ...(o.full ? { linkedDisk: false } : {}) } : {}),
        ...(template ? { template: template.id } : {}),
        ...(cloudInit ? { cloudInit } : {}),
        ...(o.network !== undefined ? { network: o.network } : {}),
      };
      if (o.image === undefined && !template) {
        const data = await api.json<VmEnvelope>('POST', '/vms', body);
        print(json, data, () => `created VM ${data.vm.name} (${data.vm.id})\n`);
        return;
      }
      const data = await api.json<TaskEnvelope>('POST', '/vms', body);
      if (!o.wait) {
        await kit.taskStarted(api, json, data.task, false, `create ${name}`);
        return;
      }
      const task = await kit.waitTask(api, data.task.id);
      const id = task.result?.vm;
      const made = typeof id === 'string' ? (await api.get<VmEnvelope>(`/vms/${enc(id)}`)).vm : null;
      print(json, { task, vm: made }, () => `created VM ${name}${made ? ` (${made.id})` : ''} (task ${task.id})\n`);
    });

  hardwareOptions(
    vm
      .command('hardware <vm>')
      .description('show or change firmware, Secure Boot, TPM, machine, buses and boot order (stopped VM)')
      .addOption(new Option('--os <type>', 'the OS type recorded (presets apply only at create)').choices(['linux', 'windows', 'other'])),
  ).action(async (ref: string, o: HardwareOpts, cmd: Command) => {
    const { api, json } = ctx(cmd);
    const v = await kit.vmOf(api, ref);
    const body = hardwareBody(o);
    const result = Object.keys(body).length > 0 ? (await api.json<VmEnvelope>('PUT', `/vms/${enc(v.id)}/hardware`, body)).vm : v;
    print(json, { vm: result }, () => `${result.name}: ${hardwareSummary(result)}${result.driversIso ? `, drivers ${result.driversIso}` : ''}\n`);
  });

  vm.command('template <vm>')
    .description('turn a stopped VM into a template (its disks become read-only bases; it cannot start)')
    .action(async (ref: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const v = await kit.vmOf(api, ref);
      const data = await api.json<VmEnvelope>('POST', `/vms/${enc(v.id)}/template`);
      print(json, data, () => `${data.vm.name} is a template\n`);
    });

  cloudInitOptions(
    vm
      .command('cloud-init <vm>')
      .description('show, set (replacing it; the password is kept unless given) or clear a VM\'s cloud-init config')
      .option('--clear', 'remove the config'),
  ).action(async (ref: string, o: CloudInitOpts & { clear?: boolean }, cmd: Command) => {
    const { api, json } = ctx(cmd);
    const v = await kit.vmOf(api, ref);
    const body = cloudInitBody(o);
    if (o.clear) {
      if (body) throw usage('--clear takes no other cloud-init option');
      const data = await api.json<MessageBody>('DELETE', `/vms/${enc(v.id)}/cloud-init`);
      print(json, data, () => `${data.message}\n`);
      return;
    }
    const data = body
      ? await api.json<CloudInitEnvelope>('PUT', `/vms/${enc(v.id)}/cloud-init`, body)
      : await api.get<CloudInitEnvelope>(`/vms/${enc(v.id)}/cloud-init`);
    const c = data.cloudInit;
    print(json, data, () =>
      table(
        ['FIELD', 'VALUE'],
        [
          ['hostname', c.hostname],
          ['user', c.user],
          ['password', c.password],
          ['ssh keys', c.sshAuthorizedKeys.length],
          ['user-data', c.userData === null ? null : `${c.userData.split('\n').length} lines`],
          ['network-config', c.networkConfig === null ? null : `${c.networkConfig.split('\n').length} lines`],
          ['instance-id', c.instanceId],
          ['updated', c.updatedAt],
        ],
      ),
    );
  });

  // ---- image
  const image = program.command('image').description('the library of ready disks (cloud images)');
  image
    .command('ls')
    .description('list images')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<ImageListEnvelope>('/images');
      print(json, data, () =>
        table(
          ['NAME', 'VIRTUAL', 'SIZE', 'USED BY', 'SHA256', 'SOURCE'],
          data.images.map((i) => [i.name, bytes(i.virtualSize), bytes(i.size), i.usedBy.length, i.sha256.slice(0, 12), i.source]),
        ),
      );
    });
  image
    .command('catalogue')
    .description('well-known cloud images that `image pull <id>` fetches')
    .action(async (_o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.get<ImageCatalogueEnvelope>('/images/catalogue');
      print(json, data, () => table(['ID', 'TITLE', 'URL'], data.catalogue.map((e) => [e.id, e.title, e.url])));
    });
  image
    .command('pull <name> [url]')
    .description('download an image from an http(s) URL (or, without a URL, the catalogue entry <name>)')
    .option('--sha256 <hex>', 'the SHA-256 the download must have')
    .option('--checksum-url <url>', 'a SHA256SUMS/SHA512SUMS-style list naming the file')
    .addOption(new Option('--format <format>', 'format of the download (default: read from it)').choices(['qcow2', 'raw', 'vmdk']))
    .option('--wait', 'wait for the download')
    .action(async (name: string, url: string | undefined, o: { sha256?: string; checksumUrl?: string; format?: CreateImageBody['format']; wait?: boolean }, cmd: Command) => {
      const { api, json } = ctx(cmd);
      let body: CreateImageBody;
      if (url === undefined) {
        const { catalogue } = await api.get<ImageCatalogueEnvelope>('/images/catalogue');
        const entry = catalogue.find((e) => e.id === name);
        if (!entry) throw usage(`${name} is not in the catalogue (qemu-manager image catalogue); give a URL`);
        body = { name, url: entry.url, checksumUrl: entry.checksumUrl, format: entry.format };
      } else {
        body = { name, url };
      }
      if (o.sha256 !== undefined) body.sha256 = o.sha256;
      if (o.checksumUrl !== undefined) body.checksumUrl = o.checksumUrl;
      if (o.format !== undefined) body.format = o.format;
      const data = await api.json<TaskEnvelope>('POST', '/images', body);
      await kit.taskStarted(api, json, data.task, o.wait, `pull ${name}`);
    });
  image
    .command('upload <name> <file>')
    .description('upload a disk image file (stored as qcow2)')
    .action(async (name: string, file: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const size = kit.fileSize(file);
      const data = await kit.upload<ImageEnvelope>(api, `/images/upload/${enc(name)}`, file, size, name);
      print(json, data, () => `uploaded ${data.image.name} (${bytes(data.image.virtualSize)} virtual)\n`);
    });
  image
    .command('rm <name>')
    .description('delete an image (refused while disks back onto it)')
    .action(async (name: string, _o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const data = await api.json<MessageBody>('DELETE', `/images/${enc(name)}`);
      print(json, data, () => `${data.message}\n`);
    });
}
