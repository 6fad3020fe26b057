import { describe, expect, it } from 'vitest';
import { parseBalloonStats } from './balloon.js';

const MiB = 1024 * 1024;

describe('balloon statistics', () => {
  it('reads the total and available memory the guest reported', () => {
    const answer = { stats: { 'stat-total-memory': 200 * MiB, 'stat-available-memory': 150 * MiB, 'stat-free-memory': 120 * MiB }, 'last-update': 1764600000 };
    expect(parseBalloonStats(answer, 256 * MiB)).toEqual({ totalBytes: 200 * MiB, availableBytes: 150 * MiB });
  });
  it('falls back to the free memory when the guest has no available figure', () => {
    const answer = { stats: { 'stat-total-memory': 200 * MiB, 'stat-available-memory': -1, 'stat-free-memory': 120 * MiB }, 'last-update': 5 };
    expect(parseBalloonStats(answer, 256 * MiB)).toEqual({ totalBytes: 200 * MiB, availableBytes: 120 * MiB });
  });
  it('is null before the first report, without a driver, or for numbers that cannot be true', () => {
    expect(parseBalloonStats({ stats: { 'stat-total-memory': -1, 'stat-free-memory': -1 }, 'last-update': 0 }, 256 * MiB)).toBeNull();
    expect(parseBalloonStats({ stats: { 'stat-total-memory': 100, 'stat-free-memory': 50 }, 'last-update': 0 }, 256 * MiB)).toBeNull();
    expect(parseBalloonStats({ stats: { 'stat-total-memory': 512 * MiB, 'stat-free-memory': 10 }, 'last-update': 9 }, 256 * MiB)).toBeNull();
    expect(parseBalloonStats({ stats: { 'stat-total-memory': 100 * MiB, 'stat-free-memory': 101 * MiB }, 'last-update': 9 }, 256 * MiB)).toBeNull();
    expect(parseBalloonStats({ stats: { 'stat-total-memory': 1.5, 'stat-free-memory': 1 }, 'last-update': 9 }, 256 * MiB)).toBeNull();
    expect(parseBalloonStats('garbage', 256 * MiB)).toBeNull();
    expect(parseBalloonStats(null, 256 * MiB)).toBeNull();
  });
});
