// People given rights from chat or ad-hoc commands (by claim or invitation),
// kept in the state database so they survive restarts. The config file's
// owners and viewers are not here: it stays the root of trust. The table is
// small and read on every stanza, so it is held in memory and written through.

import type Database from 'better-sqlite3';

export type StoredRole = 'owner' | 'viewer';
export type StoredSource = 'claim' | 'invite';

export interface StoredPerson {
  /** Lower-case bare JID. */
  jid: string;
  role: StoredRole;
  source: StoredSource;
  /** Who invited them (bare JID); none for a claim. */
  by?: string;
  /** ms since the epoch, when they were given this role. */
  since: number;
}

/** The migration that makes the table (the store's schema version 2). */
export const PEOPLE_MIGRATION = `CREATE TABLE people (
     jid TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
     source TEXT NOT NULL CHECK (source IN ('claim', 'invite')),
     invited_by TEXT,
     since INTEGER NOT NULL
   );`;

interface Row {
  jid: string;
  role: StoredRole;
  source: StoredSource;
  invited_by: string | null;
  since: number;
}

export class PeopleTable {
  private readonly cache = new Map<string, StoredPerson>();
  private readonly stmt;

  /** Built by openStore(), on a migrated database. */
  constructor(db: Database.Database) {
    this.stmt = {
      upsert: db.prepare<[string, StoredRole, StoredSource, string | null, number], void>(
        'INSERT INTO people (jid, role, source, invited_by, since) VALUES (?, ?, ?, ?, ?) ON CONFLICT (jid) DO UPDATE SET role = excluded.role, source = excluded.source, invited_by = excluded.invited_by, since = excluded.since',
      ),
      remove: db.prepare<[string], void>('DELETE FROM people WHERE jid = ?'),
    };
    for (const r of db.prepare<[], Row>('SELECT jid, role, source, invited_by, since FROM people ORDER BY since, jid').all()) {
      this.cache.set(r.jid, { jid: r.jid, role: r.role, source: r.source, ...(r.invited_by ? { by: r.invited_by } : {}), since: r.since });
    }
  }

  get(jid: string): StoredPerson | undefined {
    return this.cache.get(jid.toLowerCase());
  }

  /** Oldest first. */
  all(): StoredPerson[] {
    return [...this.cache.values()];
  }

  /** Adds or changes a person; on disk (synced) when it returns. */
  put(p: StoredPerson): void {
    const jid = p.jid.toLowerCase();
    this.stmt.upsert.run(jid, p.role, p.source, p.by ?? null, p.since);
    this.cache.delete(jid); // re-inserted at the end: the order stays "by when they got this role"
    this.cache.set(jid, { ...p, jid });
  }

  /** True if they were there. */
  remove(jid: string): boolean {
    const bare = jid.toLowerCase();
    this.stmt.remove.run(bare);
    return this.cache.delete(bare);
  }
}
