// Wires service-account tokens into the API server: the TokenRequest subresource, the JWT bearer
// authenticator, and the Pod create hook that adds the kube-api-access volume (admission.ts does the
// mutation; this looks up the pod's ServiceAccount for its automountServiceAccountToken setting).
// Used by startApiServer when it is given a service-account key.
import type { KObject } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { isStatusError } from '../machinery/status.js';
import type { Registry, WriteHook } from './registry.js';
import type { Authenticator } from './auth.js';
import type { HandlerOptions } from './handler.js';
import { admitServiceAccountToken } from './admission.js';
import { TokenSigner, serviceAccountTokenAuthenticator, tokenRequestHandler } from './serviceaccount-token.js';

export function installServiceAccountTokens(registry: Registry, auth: Authenticator, keyPem: string): {
  signer: TokenSigner; subresourceHandlers: NonNullable<HandlerOptions['subresourceHandlers']>;
} {
  const signer = new TokenSigner(keyPem);
  auth.addTokenAuthenticator(serviceAccountTokenAuthenticator(signer, registry));
  const saDef = findResource('', 'v1', 'serviceaccounts')!;
  const prev = registry.writeHooks.get('Pod');
  const hook: WriteHook = {
    async beginCreate(obj: KObject) {
      const sa = (obj.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName || 'default';
      let saObj: KObject | undefined;
      try { saObj = (await registry.get(saDef, obj.metadata?.namespace, sa)).obj; } catch (e) { if (!isStatusError(e, 'NotFound')) throw e; }
      admitServiceAccountToken(obj, saObj);
      return prev ? prev.beginCreate(obj) : () => undefined;
    },
    beginUpdate(next, cur) { return prev ? prev.beginUpdate(next, cur) : () => undefined; },
  };
  registry.writeHooks.set('Pod', hook);
  return { signer, subresourceHandlers: { 'serviceaccounts/token': tokenRequestHandler(signer, registry) } };
}
