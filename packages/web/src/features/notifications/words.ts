import type { NotificationEvent } from '@qemu-manager/contract';
import { getLanguage } from '../../i18n';

/** Alerts (issue 14): the Notifications page's words, English and Italian (same keys). */
const en = {
  nav: 'Alerts',
  title: 'Alerts',
  intro: 'Endpoints told when a VM stops without being asked, a task fails, storage runs low or the server starts. Failed deliveries are retried.',
  empty: 'No alert endpoints yet.',
  loadFailed: 'Could not load the alert endpoints.',
  add: 'Add endpoint',
  name: 'Name',
  kind: 'Kind',
  url: 'URL',
  urlHint: 'http:// or https:// (ntfy: the topic URL)',
  events: 'Events',
  smtpHost: 'SMTP host',
  smtpPort: 'Port',
  smtpSecure: 'TLS from the start (port 465)',
  smtpUser: 'User',
  smtpPassword: 'Password',
  smtpFrom: 'From',
  smtpTo: 'To (comma-separated)',
  create: 'Add',
  remove: 'Delete',
  removeConfirm: (name: string) => `Delete the endpoint “${name}”?`,
  test: 'Send a test',
  testOk: 'Delivered.',
  testFailed: (why: string) => `Not delivered: ${why}`,
  deliveries: 'Last deliveries',
  noDeliveries: 'Nothing sent yet.',
  attempt: (n: number) => `attempt ${n}`,
  ok: 'delivered',
  failed: 'failed',
  retrying: 'will retry',
  eventNames: { 'vm.crashed': 'VM crashed', 'task.failed': 'Task failed', 'storage.low': 'Storage low', 'server.started': 'Server started', test: 'Test' } as Record<NotificationEvent | 'test', string>,
};

export type NotificationWords = typeof en;

const it: NotificationWords = {
  nav: 'Avvisi',
  title: 'Avvisi',
  intro: 'Destinazioni avvisate quando una VM si ferma senza che sia stato chiesto, un’attività fallisce, lo spazio scarseggia o il server si avvia. Gli invii falliti vengono ritentati.',
  empty: 'Nessuna destinazione di avviso.',
  loadFailed: 'Impossibile caricare le destinazioni di avviso.',
  add: 'Aggiungi destinazione',
  name: 'Nome',
  kind: 'Tipo',
  url: 'URL',
  urlHint: 'http:// o https:// (ntfy: l’URL del topic)',
  events: 'Eventi',
  smtpHost: 'Server SMTP',
  smtpPort: 'Porta',
  smtpSecure: 'TLS dall’inizio (porta 465)',
  smtpUser: 'Utente',
  smtpPassword: 'Password',
  smtpFrom: 'Mittente',
  smtpTo: 'Destinatari (separati da virgole)',
  create: 'Aggiungi',
  remove: 'Elimina',
  removeConfirm: (name: string) => `Eliminare la destinazione “${name}”?`,
  test: 'Invia una prova',
  testOk: 'Consegnato.',
  testFailed: (why: string) => `Non consegnato: ${why}`,
  deliveries: 'Ultimi invii',
  noDeliveries: 'Ancora nessun invio.',
  attempt: (n: number) => `tentativo ${n}`,
  ok: 'consegnato',
  failed: 'fallito',
  retrying: 'verrà ritentato',
  eventNames: { 'vm.crashed': 'VM interrotta', 'task.failed': 'Attività fallita', 'storage.low': 'Spazio scarso', 'server.started': 'Server avviato', test: 'Prova' },
};

export const notificationCatalogues = { en, it };

/** The words in the UI's language (English for one without its own). */
export function words(): NotificationWords {
  const lang = getLanguage();
  return lang === 'it' ? it : en;
}
