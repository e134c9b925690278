// sasl-scram-sha-1 1.4.0 (the stock client's SCRAM-SHA-1 mechanism, measured
// against ours in bench/run.ts) has no typings on DefinitelyTyped: only the
// two methods the benchmark calls.
declare module 'sasl-scram-sha-1' {
  class Mechanism {
    response(cred: { username: string; password: string }): string;
    challenge(chal: string): this;
  }
  export = Mechanism;
}
