// XEP-0050 commands for owners to manage people, the same as the chat words
// "owners", "invite" and "revoke": a form each, answered with the same sentences.

import { canActuate } from '../core/authority.js';
import type { People } from '../services/people.js';
import type { FormCommand, FormCommandStep } from './commands.js';
import { formElement } from './forms.js';

const done = (o: { ok: boolean; text: string }): FormCommandStep => ({ status: 'completed', note: { type: o.ok ? 'info' : 'error', text: o.text } });

export function peopleCommands(people: People): FormCommand[] {
  return [
    {
      node: 'people',
      name: 'People',
      allowed: canActuate,
      run: () => {
        const all = people.list();
        const line = (p: (typeof all)[number]): string =>
          `${p.jid} (${p.source === 'config' ? 'agent.yaml' : p.source === 'claim' ? 'claimed' : `invited by ${p.by ?? 'an owner'}`})`;
        return {
          status: 'completed',
          form: formElement({
            type: 'result',
            title: 'People',
            instructions: 'People named in agent.yaml cannot be revoked here.',
            fields: [
              { var: 'owners', type: 'text-multi', label: 'Owners (read and control)', values: all.filter((p) => p.role === 'owner').map(line) },
              { var: 'viewers', type: 'text-multi', label: 'Viewers (read)', values: all.filter((p) => p.role === 'viewer').map(line) },
            ],
          }),
        };
      },
    },
    {
      node: 'invite',
      name: 'Invite a person',
      allowed: canActuate,
      run: ({ from, submitted }) => {
        const jid = submitted?.get('jid')?.[0];
        if (jid === undefined) {
          return {
            status: 'executing',
            form: formElement({
              type: 'form',
              title: 'Invite a person',
              instructions: 'Their subscription request is approved when they add the gateway to their contacts.',
              fields: [
                { var: 'jid', type: 'jid-single', label: 'Address', required: true },
                {
                  var: 'role',
                  type: 'list-single',
                  label: 'May',
                  required: true,
                  values: ['viewer'],
                  options: [
                    { label: 'read (viewer)', value: 'viewer' },
                    { label: 'read and control (owner)', value: 'owner' },
                  ],
                },
              ],
            }),
          };
        }
        const role = submitted?.get('role')?.[0] ?? 'viewer';
        if (role !== 'viewer' && role !== 'owner') return done({ ok: false, text: `role must be viewer or owner, not "${role.slice(0, 20)}"` });
        return done(people.invite(from, jid, role));
      },
    },
    {
      node: 'revoke',
      name: 'Revoke a person',
      allowed: canActuate,
      run: ({ from, submitted }) => {
        const jid = submitted?.get('jid')?.[0];
        if (jid !== undefined) return done(people.revoke(from, jid));
        const revocable = people.list().filter((p) => p.source !== 'config');
        if (revocable.length === 0) return done({ ok: true, text: 'Nobody was added by claim or invitation; people named in agent.yaml are changed in the file.' });
        return {
          status: 'executing',
          form: formElement({
            type: 'form',
            title: 'Revoke a person',
            instructions: 'People named in agent.yaml are not listed: they are changed in the file.',
            fields: [{ var: 'jid', type: 'list-single', label: 'Person', required: true, options: revocable.map((p) => ({ label: `${p.jid} (${p.role})`, value: p.jid })) }],
          }),
        };
      },
    },
  ];
}
