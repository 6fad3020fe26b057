import { describe, expect, it } from 'vitest';
import { createNotificationBody } from './api';
import { notificationCatalogues } from './words';

const keys = (o: object) => Object.keys(o).sort();

describe('alerts page (issue 14)', () => {
  it('Italian has exactly the English words', () => {
    const { en, it: itWords } = notificationCatalogues;
    expect(keys(itWords)).toEqual(keys(en));
    expect(keys(itWords.eventNames)).toEqual(keys(en.eventNames));
    expect(itWords.removeConfirm('x')).toContain('x');
  });

  it('the form becomes a URL body or SMTP settings, empty optional fields left out', () => {
    const smtp = { host: ' mail.example.test ', port: '465', secure: true, user: '', password: '', from: 'a@b.test', to: 'x@y.test, z@y.test,' };
    expect(createNotificationBody({ name: ' hook ', kind: 'webhook', url: ' https://h.test/x ', events: ['vm.crashed'], smtp })).toEqual({
      name: 'hook',
      kind: 'webhook',
      url: 'https://h.test/x',
      events: ['vm.crashed'],
    });
    expect(createNotificationBody({ name: 'm', kind: 'smtp', url: '', events: ['task.failed'], smtp })).toEqual({
      name: 'm',
      kind: 'smtp',
      events: ['task.failed'],
      smtp: { host: 'mail.example.test', port: 465, secure: true, from: 'a@b.test', to: ['x@y.test', 'z@y.test'] },
    });
  });
});
