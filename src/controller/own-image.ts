/**
 * The launcher image restored pods use, when the controller is not told one: the
 * image of the controller's own container, read from its own Pod (POD_NAME and
 * POD_NAMESPACE come from the downward API, deploy/controller.yaml).
 *
 * Why not an env var set beside the image in the manifests: the image is then
 * written in two places, and kustomize's `images:` transformer, `kubectl set image`
 * or an overlay rewrite only the container's `image` field, so the launcher image
 * silently stays the old one — the restored pods would copy another release's
 * launcher. A kustomize `replacements:` copy of the image into the env var works
 * only inside deploy/: a user's overlay runs its own `images:` after it, and the
 * Helm chart and `kubectl set image` would each need their own copy. The downward API cannot expose a container's image, but the controller
 * may read pods already (it creates restored pods), so it asks for its own. The
 * one image value of kustomize or of the Helm chart is then the only place to edit.
 */
import type { CoreV1Api } from '@kubernetes/client-node';

/** The container of the controller's pod that names the image (deploy/controller.yaml). */
export const CONTROLLER_CONTAINER = 'controller';

/** The image of `container` in pod namespace/name; throws saying what was missing. */
export async function ownImage(
  core: CoreV1Api,
  pod: { name: string; namespace: string },
  container = CONTROLLER_CONTAINER,
): Promise<string> {
  let spec;
  try {
    spec = (await core.readNamespacedPod(pod)).spec;
  } catch (err) {
    throw new Error(
      `reading the controller's own pod ${pod.namespace}/${pod.name} for its image: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const containers = spec?.containers ?? [];
  const image = (containers.find((c) => c.name === container) ?? containers[0])?.image;
  if (!image)
    throw new Error(`pod ${pod.namespace}/${pod.name} has no container image to use as the launcher image`);
  return image;
}
