# Sourced by the image builders (build.sh, build-corpus.sh): an OCI image layout, written
# reproducibly (sorted entries, mtime 0, owner 0, gzip -n, canonical JSON), as one tar
# that `ctr images import` accepts. Needs $arch (amd64, arm64…) set by the caller.

# A reproducible tar of the entries of directory $1 into file $2.
retar() {
  (cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
      --no-acls --no-xattrs --no-selinux -cf - -T -) >"$2"
}
# Puts file $1 into layout $2's blobs; prints "sha256:<hex> <size>".
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mkdir -p "$2/blobs/sha256"
  mv "$1" "$2/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
# oci_image LAYOUT ARCHIVE REF CONFIG_JSON ROOTFS...: layers (gzip), config, manifest,
# index, then the layout as one tar. CONFIG_JSON is the image config's "config" object;
# each ROOTFS is "dir=history text".
oci_image() {
  local layout=$1 archive=$2 ref=$3 cfg=$4
  shift 4
  local layers=() diffs=() history=() spec d text diff
  mkdir -p "$layout"
  for spec in "$@"; do
    d=${spec%%=*} text=${spec#*=}
    retar "$d" "$layout/layer.tar"
    diff="sha256:$(sha256sum "$layout/layer.tar" | cut -d' ' -f1)"
    gzip -n -6 <"$layout/layer.tar" >"$layout/layer.tar.gz"
    rm "$layout/layer.tar"
    layers+=("$(blob "$layout/layer.tar.gz" "$layout")")
    diffs+=("$diff")
    history+=("$text")
  done
  # JSON through node: proper escaping, one canonical form (key order as written).
  node - "$layout" "$ref" "$arch" "$cfg" "${#layers[@]}" "${layers[@]}" "${diffs[@]}" "${history[@]}" <<'EOF'
const fs = require('node:fs');
const crypto = require('node:crypto');
const [layout, ref, arch, cfg, n, ...rest] = process.argv.slice(2);
const count = Number(n);
const layers = rest.slice(0, count).map((l) => l.split(' '));
const diffs = rest.slice(count, 2 * count);
const history = rest.slice(2 * count).map((t) => ({ created: '1970-01-01T00:00:00Z', created_by: t }));
const put = (obj) => {
  const data = Buffer.from(JSON.stringify(obj));
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  fs.writeFileSync(`${layout}/blobs/sha256/${hex}`, data);
  return { digest: `sha256:${hex}`, size: data.length };
};
const platform = { architecture: arch, os: 'linux' };
const config = put({
  created: '1970-01-01T00:00:00Z',
  ...platform,
  config: JSON.parse(cfg),
  rootfs: { type: 'layers', diff_ids: diffs },
  history,
});
const manifest = put({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
  layers: layers.map(([digest, size]) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest,
    size: Number(size),
  })),
});
const tag = ref.slice(ref.lastIndexOf(':') + 1);
fs.writeFileSync(
  `${layout}/index.json`,
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        platform,
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
      },
    ],
  }),
);
fs.writeFileSync(`${layout}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
EOF
  retar "$layout" "$archive"
}
