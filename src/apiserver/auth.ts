// Authentication (bearer tokens, client certificates) and a simple authorizer.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

export interface UserInfo { username: string; uid?: string; groups: string[]; extra?: Record<string, string[]> }

export class Authenticator {
  private readonly tokens = new Map<string, UserInfo>();
  /** When false, every request is treated as the admin (in-process tests without TLS). */
  constructor(readonly required = true) {}

  addToken(token: string, user: UserInfo): void { this.tokens.set(token, user); }

  /** Extra bearer-token checks (service-account JWTs), tried after the static tokens. */
  private readonly tokenAuthenticators: ((token: string) => UserInfo | undefined)[] = [];
  addTokenAuthenticator(fn: (token: string) => UserInfo | undefined): void { this.tokenAuthenticators.push(fn); }

  authenticate(req: IncomingMessage): UserInfo | undefined {
    if (!this.required) return { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] };
    const h = req.headers.authorization;
    if (h && /^bearer\s+/i.test(h)) {
      const tok = h.replace(/^bearer\s+/i, '').trim();
      // a hash lookup, as upstream's static token file authenticator does (its map of tokens)
      const u = this.tokens.get(tok);
      if (u) return u;
      for (const fn of this.tokenAuthenticators) {
        const u = fn(tok);
        if (u) return u;
      }
      return undefined;
    }
    const sock = req.socket as TLSSocket;
    if (typeof sock.getPeerCertificate === 'function' && sock.authorized) {
      const cert = sock.getPeerCertificate();
      const cn = cert?.subject?.CN;
      if (cn) {
        const o = cert.subject.O;
        const groups = Array.isArray(o) ? o : o ? [o] : [];
        return { username: String(cn), groups: [...groups.map(String), 'system:authenticated'] };
      }
    }
    return undefined;
  }
}

/** Health endpoints any caller may read (upstream's system:public-info-viewer minus /version, as k3s
 *  runs with anonymous auth off). */
export const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz']);
