/**
 * The names the host network adapter hands to iproute2, nftables and the file system. The domain
 * validates them already (the contract's patterns); these checks are the adapter's own, made
 * before any command runs (defence in depth: nothing reaches a shell, argv arrays only).
 */
import { AppError } from '../lib/errors.js';

/** A link of ours: a bridge `qm-<name>` or a tap `qm-<8 hex>.<slot>` (at most 15 characters). */
const OUR_LINK = /^qm-[a-z0-9.-]{1,12}$/;
/** Any Linux interface name (for a host bridge we only look at). */
const ANY_LINK = /^[A-Za-z0-9_.:-]{1,15}$/;
/** A network id: it names files under the run dir. */
const NETWORK_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isOurLinkName(name: string): boolean {
  return OUR_LINK.test(name);
}

/** A tap of ours has a dot (a network's bridge never has one). */
export function isOurTapName(name: string): boolean {
  return OUR_LINK.test(name) && name.includes('.');
}

export function isLinkName(name: string): boolean {
  return ANY_LINK.test(name) && name !== '.' && name !== '..';
}

export function ourLink(name: string): string {
  if (!OUR_LINK.test(name)) throw new AppError('NETWORK_SETUP_FAILED', `Refusing the link name ${JSON.stringify(name)}: not one of this server's (qm-…)`);
  return name;
}

export function networkId(id: string): string {
  if (!NETWORK_ID.test(id)) throw new AppError('NETWORK_SETUP_FAILED', `Refusing the network id ${JSON.stringify(id)}`);
  return id;
}
