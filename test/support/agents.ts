/**
 * Node agents' identities on a reconciler harness: deploy/'s RBAC and admission policies
 * applied as shipped, and for each node the tokens its kubelet would project into the
 * agent's pod (src/local/cluster/install.ts agentCredentials), so that a test talks to the
 * API server and to other agents' transfer servers exactly as that node's agent does.
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { AuthenticationV1Api } from '@kubernetes/client-node';
import type { Restore } from '../../src/api/index.js';
import { NODE_LABEL, RESTORE } from '../../src/api/index.js';
import { transferAuthorizer } from '../../src/agent/migration/transfer-auth.js';
import type { TransferAuthorizer } from '../../src/agent/transfer/server.js';
import type { Clients } from '../../src/kube/client.js';
import { ResourceClient, loadKubeConfig, makeClients } from '../../src/kube/client.js';
import { installOperator } from '../../src/local/cluster/install.js';
import type { Harness } from '../controller/support.js';
import { createRestore } from '../controller/support.js';

export interface AgentIdentity extends Clients {
  node: string;
  kc: KubeConfig;
  restores: ResourceClient<Restore>;
  /** Its token for the transfer audience, and the file it is in. */
  transferToken: string;
  transferTokenFile: string;
  /** Its transfer server's rule, asking the API server as this agent. */
  authorizer: TransferAuthorizer;
}

/** The Nodes must exist. Applies deploy/ (without crds/, which the harness has). */
export async function agentIdentities(h: Harness, nodes: string[]): Promise<Map<string, AgentIdentity>> {
  const credentials = await installOperator(h.cluster, h.cluster.adminKubeconfig, { crds: false });
  const out = new Map<string, AgentIdentity>();
  for (const node of nodes) {
    const own = await credentials.agent(node);
    const kc = loadKubeConfig(own.kubeconfig);
    const clients = makeClients(kc);
    const restores = new ResourceClient<Restore>(clients.custom, RESTORE);
    out.set(node, {
      ...clients,
      node,
      kc,
      restores,
      transferToken: readFileSync(own.transferTokenFile, 'utf8'),
      transferTokenFile: own.transferTokenFile,
      authorizer: transferAuthorizer({
        authn: kc.makeApiClient(AuthenticationV1Api),
        restores,
        nodeName: node,
      }),
    });
  }
  return out;
}

/** A Restore of checkpoint `checkpoint` assigned to `node` (the label the controller sets), made by the admin. */
export function assignRestore(h: Harness, name: string, checkpoint: string, node: string): Promise<Restore> {
  const spec = { checkpointName: checkpoint, target: { podName: `${name}-pod` } };
  return createRestore(h, name, spec, { [NODE_LABEL]: node });
}
