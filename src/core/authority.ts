// Who may do what: owners read and actuate, viewers read, everyone else nothing.

export type Role = 'owner' | 'viewer' | 'server' | 'stranger';

export interface Authority {
  roleOf(jid: string | undefined): Role;
}

/** Lower-cased bare JID of a (full) JID string. */
export function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}

export function createAuthority(args: { self: string; owners: readonly string[]; viewers: readonly string[] }): Authority {
  const self = bareOf(args.self);
  const domain = self.slice(self.indexOf('@') + 1);
  const owners = new Set(args.owners.map(bareOf));
  const viewers = new Set(args.viewers.map(bareOf));
  return {
    roleOf(jid) {
      // A stanza without 'from' comes from our own server on our behalf (RFC 6120 §8.1.2.1).
      if (jid === undefined || jid === '') return 'server';
      const bare = bareOf(jid);
      if (bare === self || owners.has(bare)) return 'owner';
      if (viewers.has(bare)) return 'viewer';
      if (bare === domain) return 'server';
      return 'stranger';
    },
  };
}

export const canRead = (r: Role): boolean => r === 'owner' || r === 'viewer';
export const canActuate = (r: Role): boolean => r === 'owner';
