/** Parsing of resource URLs: /api/v1/... and /apis/GROUP/VERSION/..., namespaced or not. */

/** A resource request path, taken apart. */
export interface ResourcePath {
  group: string;
  version: string;
  namespace?: string;
  resource: string;
  name?: string;
  subresource?: string;
}

/** Takes a resource path apart, or returns undefined for anything else. */
export function parseResourcePath(pathname: string): ResourcePath | undefined {
  const parts = pathname
    .split('/')
    .filter((p) => p.length > 0)
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else return undefined;
  // /namespaces/NS/RESOURCE[/NAME[/SUB]] — except the namespace object's own subresources.
  if (
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    !(group === '' && rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))
  ) {
    const [, namespace, resource, name, subresource] = rest;
    if (rest.length > 5) return undefined;
    return {
      group,
      version,
      namespace: namespace!,
      resource: resource!,
      ...(name ? { name } : {}),
      ...(subresource ? { subresource } : {}),
    };
  }
  if (rest.length > 3) return undefined;
  const [resource, name, subresource] = rest;
  return {
    group,
    version,
    resource: resource!,
    ...(name ? { name } : {}),
    ...(subresource ? { subresource } : {}),
  };
}
