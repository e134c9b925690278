// A SCRAM-SHA-1 mechanism for the stock @xmpp/client's SASL factory, on our
// native-PBKDF2 ScramClient: the "bare client with native PBKDF2" baseline.

import { ScramClient, type SaltCache } from '../src/xmpp/scram.js';

export function nativeScramMechanism(cache: SaltCache = new Map()) {
  return class NativeScramSha1 {
    // On the prototype (getters), where saslmechanisms' factory looks for them.
    get name(): string {
      return 'SCRAM-SHA-1';
    }
    get clientFirst(): boolean {
      return true;
    }
    private client?: ScramClient;
    private serverFirst?: string;
    private answered = false;

    async response(cred: { username: string; password: string }): Promise<string> {
      if (!this.client) {
        this.client = new ScramClient('sha1', cred.username, cred.password, cache);
        return this.client.first();
      }
      if (this.serverFirst && !this.answered) {
        this.answered = true;
        return this.client.final(this.serverFirst);
      }
      return '';
    }

    async challenge(data: string): Promise<void> {
      if (!this.serverFirst) this.serverFirst = data;
      else this.client?.verify(data);
    }
  };
}
