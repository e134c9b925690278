// Who may do what: owners read and actuate, viewers read, our server a few
// protocol chores, everyone else (the gateway's own other resources included) nothing.

export type Role = 'owner' | 'viewer' | 'server' | 'stranger';

export interface Authority {
  roleOf(jid: string | undefined): Role;
}

/** Lower-cased bare JID of a (full) JID string. */
export function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}

/**
 * Roles by sender. The gateway's own account gets no rights it is not given:
 * its other resources are strangers unless its bare JID is listed in owners
 * or viewers (its password sits on every gateway's SD card). Our server, and
 * the account itself as the server speaks for it (no 'from', our bare JID
 * without a resource, the bare domain), is 'server': it may ping, ask for our
 * identity and features, and push the roster, nothing else.
 */
export function createAuthority(args: {
  self: string;
  owners: readonly string[];
  viewers: readonly string[];
  /** People given a role from chat (claim, invite), asked after the config on every call, so changes count at once. */
  people?: (bare: string) => 'owner' | 'viewer' | undefined;
}): Authority {
  const self = bareOf(args.self);
  const domain = self.slice(self.indexOf('@') + 1);
  const owners = new Set(args.owners.map(bareOf));
  const viewers = new Set(args.viewers.map(bareOf));
  return {
    roleOf(jid) {
      // A stanza without 'from' comes from our own server on our behalf (RFC 6120 §8.1.2.1).
      if (jid === undefined || jid === '') return 'server';
      const bare = bareOf(jid);
      if (owners.has(bare)) return 'owner';
      if (viewers.has(bare)) return 'viewer';
      const stored = bare === self ? undefined : args.people?.(bare);
      if (stored) return stored;
      const resource = jid.includes('/');
      if (!resource && (bare === domain || bare === self)) return 'server';
      return 'stranger';
    },
  };
}

export const canRead = (r: Role): boolean => r === 'owner' || r === 'viewer';
export const canActuate = (r: Role): boolean => r === 'owner';
