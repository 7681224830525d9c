/**
 * Who may fetch an image from this agent's transfer server, decided with the API
 * server rather than with a shared secret: the requester is another fdckpt agent if
 * the API server says its bearer token is one of this agent's ServiceAccount, minted
 * for TRANSFER_AUDIENCE (TokenReview); the token is bound to the requester's pod, so
 * the API server also says which node it runs on (NodeRestriction lets a kubelet get
 * such tokens only for pods on its own node). It may have a Checkpoint's image only
 * while a Restore of that Checkpoint is assigned to that node (the label the
 * controller sets, which no agent can write). So an agent reads no Secret, and a
 * compromised node can fetch the images of no Restore but its own.
 *
 * Every refused request cost an API call: the calls in flight are bounded, and the
 * overflow is answered 503 without asking (the fetcher retries 5xx with backoff).
 */
import type { AuthenticationV1Api } from '@kubernetes/client-node';
import type { Restore } from '../../api/index.js';
import { NODE_LABEL, TRANSFER_AUDIENCE } from '../../api/index.js';
import type { ResourceClient } from '../../kube/client.js';
import type { TransferAuthorizer, TransferVerdict } from '../transfer/server.js';

/** Where the API server names a pod-bound token's node (ServiceAccountTokenPodNodeInfo). */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** Reviews at once; a peer fetches a few images at a time, so this is plenty. */
export const DEFAULT_MAX_REVIEWS = 8;

export interface TransferAuthDeps {
  authn: AuthenticationV1Api;
  restores: ResourceClient<Restore>;
  /** The node this agent serves images of: a request from it is not a transfer. */
  nodeName: string;
  /** Reviews in flight at most (default DEFAULT_MAX_REVIEWS). */
  maxReviews?: number;
}

/** A Restore still doing its work (a finished one needs no image). */
function inProgress(r: Restore): boolean {
  return r.status?.phase !== 'Ready' && r.status?.phase !== 'Failed' && !r.metadata.deletionTimestamp;
}

/**
 * The authorizer for `startTransferServer`. Requesters must be the ServiceAccount this
 * agent runs as (asked once, with a SelfSubjectReview), so that the rule needs no
 * configuration and follows deploy/'s names wherever the operator is installed.
 */
export function transferAuthorizer(deps: TransferAuthDeps): TransferAuthorizer {
  const max = deps.maxReviews ?? DEFAULT_MAX_REVIEWS;
  let inFlight = 0;
  let self: Promise<string> | undefined;
  const ownUser = (): Promise<string> => {
    if (self === undefined) {
      const asked = deps.authn.createSelfSubjectReview({ body: {} }).then((r) => {
        const name = r.status?.userInfo?.username;
        if (!name) throw new Error('the API server named no user for this agent (SelfSubjectReview)');
        return name;
      });
      // A failed lookup is asked again by the next request.
      asked.catch(() => (self = undefined));
      self = asked;
    }
    return self;
  };
  const decide = async (token: string, namespace: string, checkpoint: string): Promise<TransferVerdict> => {
    const want = await ownUser();
    const review = await deps.authn.createTokenReview({
      body: { spec: { token, audiences: [TRANSFER_AUDIENCE] } },
    });
    const st = review.status;
    if (!st?.authenticated || !st.user) {
      return {
        allowed: false,
        status: 401,
        reason: `the API server did not authenticate the token${st?.error ? `: ${st.error}` : ''}`,
      };
    }
    if (!(st.audiences ?? []).includes(TRANSFER_AUDIENCE))
      return { allowed: false, status: 401, reason: `the token is not for audience ${TRANSFER_AUDIENCE}` };
    const user = st.user.username ?? '';
    if (user !== want)
      return { allowed: false, status: 403, reason: `${user} is not an fdckpt agent (${want})` };
    const nodes = st.user.extra?.[NODE_NAME_EXTRA] ?? [];
    const node = nodes.length === 1 ? (nodes[0] ?? '') : '';
    if (!node)
      return {
        allowed: false,
        status: 403,
        reason: `the token names no node (${NODE_NAME_EXTRA}): only a token bound to the agent's pod says where it runs`,
      };
    if (node === deps.nodeName)
      return { allowed: false, status: 403, reason: `node ${node} holds the image itself` };
    const assigned = await deps.restores.list(namespace, `${NODE_LABEL}=${node}`);
    if (!assigned.items.some((r) => r.spec.checkpointName === checkpoint && inProgress(r)))
      return {
        allowed: false,
        status: 403,
        reason: `no Restore of checkpoint ${namespace}/${checkpoint} in progress is assigned to node ${node}`,
      };
    return { allowed: true, peer: `the agent on node ${node}` };
  };
  return async (token, namespace, checkpoint) => {
    if (inFlight >= max)
      return { allowed: false, status: 503, reason: `${max} authorizations in progress; try again` };
    inFlight++;
    try {
      return await decide(token, namespace, checkpoint);
    } finally {
      inFlight--;
    }
  };
}
