// What a failed TLS handshake means, in one sentence a person can act on: the
// host, the certificate's dates and names, and this gateway's clock. A Pi that
// booted in 1970 sees every certificate as "not yet valid": that is its clock,
// not the server, and it says so. The agent keeps retrying with backoff and
// never falls back to plaintext; once the clock (or the certificate) is right,
// the next attempt goes through by itself.

export interface PeerCertificateInfo {
  subject: string;
  /** "DNS:iot.example.org, DNS:*.iot.example.org" */
  altNames: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint: string;
}

export type CertificateProblem = 'clock-before-certificate' | 'expired' | 'wrong-name' | 'untrusted' | 'other';

/** The error of a handshake that failed on the certificate, amended: message, problem, the dates. */
export interface CertificateError extends Error {
  code?: string;
  certificateProblem: CertificateProblem;
  host: string;
  validFrom?: string;
  validTo?: string;
  clock: string;
}

export function isCertificateError(err: unknown): err is CertificateError {
  return err instanceof Error && typeof (err as Partial<CertificateError>).certificateProblem === 'string';
}

const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED']);

const iso = (text: string | undefined): string => {
  const t = text ? Date.parse(text) : NaN;
  return Number.isFinite(t) ? new Date(t).toISOString().replace('.000Z', 'Z') : (text ?? '?');
};

/**
 * If `err` is a certificate verification failure, rewrite its message to say what is wrong and mark it
 * (isCertificateError). Other errors are left as they are.
 */
export function explainCertificate(err: Error & { code?: string }, ctx: { host: string; cert?: PeerCertificateInfo; now: number }): void {
  const code = err.code ?? '';
  const problem: CertificateProblem | undefined =
    code === 'CERT_NOT_YET_VALID' ? 'clock-before-certificate'
    : code === 'CERT_HAS_EXPIRED' ? 'expired'
    : code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'wrong-name'
    : UNTRUSTED.has(code) ? 'untrusted'
    : code.startsWith('CERT_') || code.startsWith('ERR_TLS_CERT') ? 'other'
    : undefined;
  if (!problem) return;
  const c = ctx.cert;
  const from = iso(c?.validFrom);
  const to = iso(c?.validTo);
  const clock = new Date(ctx.now).toISOString();
  const names = c?.altNames || (c?.subject ? `CN=${c.subject}` : 'no names');
  const dates = `valid from ${from} to ${to}`;
  const retry = 'retrying with backoff, never without TLS';
  let text: string;
  switch (problem) {
    case 'clock-before-certificate':
      text = `the clock looks wrong: it says ${clock}, before the server certificate of ${ctx.host} becomes valid (${dates}). A Raspberry Pi has no real-time clock; once NTP sets it the agent connects by itself (${retry})`;
      break;
    case 'expired':
      text = `the server certificate of ${ctx.host} has expired (${dates}; this gateway's clock says ${clock}): renew it on the server (or, if this clock is wrong, fix its NTP); ${retry}`;
      break;
    case 'wrong-name':
      text = `the server certificate is not for ${ctx.host}: it names ${names} (${dates}); check xmpp.service and the server's certificate; ${retry}`;
      break;
    case 'untrusted':
      text = `the server certificate of ${ctx.host} is not trusted (${err.message}; issued by ${c?.issuer || '?'}, ${dates}): set xmpp.tls.ca_file to the CA that signed it; ${retry}`;
      break;
    default:
      text = `the server certificate of ${ctx.host} was refused (${err.message}; ${dates}, clock ${clock}); ${retry}`;
  }
  const amended = err as CertificateError;
  amended.message = text;
  amended.certificateProblem = problem;
  amended.host = ctx.host;
  amended.validFrom = from;
  amended.validTo = to;
  amended.clock = clock;
}
