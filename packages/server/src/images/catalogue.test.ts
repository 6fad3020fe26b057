import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUE_FILE, loadCatalogue, validateCatalogue } from './catalogue.js';

const entry = {
  id: 'debian-12',
  title: 'Debian 12',
  os: 'debian',
  url: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
  checksumUrl: 'https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS',
  format: 'qcow2',
  osType: 'linux',
};

describe('the image catalogue', () => {
  it('the shipped file is valid: Debian 12, Ubuntu 24.04, Fedora Cloud and Alpine, official https URLs', () => {
    expect(CATALOGUE_FILE.endsWith(path.join('packages', 'server', 'data', 'image-catalogue.json'))).toBe(true);
    const cat = loadCatalogue();
    expect(cat.map((e) => e.os)).toEqual(['debian', 'ubuntu', 'fedora', 'alpine']);
    const hosts = cat.map((e) => new URL(e.url).host);
    expect(hosts).toEqual(['cloud.debian.org', 'cloud-images.ubuntu.com', 'download.fedoraproject.org', 'dl-cdn.alpinelinux.org']);
    for (const e of cat) {
      expect(new URL(e.url).protocol).toBe('https:');
      expect(new URL(e.checksumUrl).host).toBe(new URL(e.url).host);
    }
  });

  it('refuses a file that is not a list of entries, an unknown field, a bad id, a duplicate, a non-http URL', () => {
    expect(() => validateCatalogue({})).toThrow('must be a JSON array');
    expect(() => validateCatalogue([{ ...entry, extra: 1 }])).toThrow(/entry 0 is not a catalogue entry/);
    expect(() => validateCatalogue([{ ...entry, format: 'vdi' }])).toThrow(/entry 0 is not a catalogue entry/);
    expect(() => validateCatalogue([{ ...entry, id: '../x' }])).toThrow('entry 0 has the id "../x", which is not a valid image name');
    expect(() => validateCatalogue([entry, entry])).toThrow('the id debian-12 appears twice');
    expect(() => validateCatalogue([{ ...entry, checksumUrl: 'file:///etc/passwd' }])).toThrow('entry debian-12 has a checksumUrl that is not an http(s) URL');
    expect(validateCatalogue([entry])).toEqual([entry]);
  });

  it('a file that is not JSON stops the load with its name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-cat-'));
    try {
      fs.writeFileSync(path.join(dir, 'c.json'), '[{');
      expect(() => loadCatalogue(path.join(dir, 'c.json'))).toThrow(/^The image catalogue .*c\.json cannot be read/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
