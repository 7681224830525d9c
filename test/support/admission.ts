/** An AdmissionReview of a Pod CREATE in namespace default, as kube-apiserver sends the pod webhook. */
import type { V1Pod } from '@kubernetes/client-node';

export function podCreateReview(pod: V1Pod, uid = 'u1'): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      operation: 'CREATE',
      namespace: 'default',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      object: pod,
    },
  });
}
