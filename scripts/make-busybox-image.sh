#!/bin/bash
# Builds an OCI image layout of busybox from Debian's busybox-static, with no
# network: one gzip layer holding /bin/busybox, a relative symlink per applet
# (busybox --install would write absolute links to the host's path), and the
# usual empty folders. Deterministic: the same busybox gives the same digests.
#
# Usage: scripts/make-busybox-image.sh DIR [NAME]   (NAME defaults to busybox:latest)
# Needs: busybox-static, python3 (scripts/setup.sh installs both).
set -euo pipefail
dest=${1:?usage: make-busybox-image.sh DIR [NAME]}
name=${2:-busybox:latest}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-image.sh: $bb missing; install busybox-static" >&2; exit 1; }
[ ! -e "$dest" ] || [ -z "$(ls -A "$dest")" ] || { echo "make-busybox-image.sh: '$dest' is not empty" >&2; exit 1; }

BB="$bb" DEST="$dest" NAME="$name" python3 - <<'PY'
import gzip, hashlib, io, json, os, subprocess, tarfile

bb, dest, name = os.environ["BB"], os.environ["DEST"], os.environ["NAME"]
epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
applets = subprocess.run([bb, "--list-full"], check=True, capture_output=True, text=True).stdout.split()

def info(path, kind, mode, size=0, link=""):
    t = tarfile.TarInfo(path)
    t.type, t.mode, t.size, t.linkname, t.mtime = kind, mode, size, link, epoch
    t.uid = t.gid = 0
    t.uname = t.gname = ""
    return t

entries = {}
for d in ["bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp", "usr",
          "usr/bin", "usr/sbin", "var"]:
    entries[d] = ("dir", 0o1777 if d == "tmp" else 0o755)
for a in applets:
    if a != "bin/busybox":
        entries[a] = ("link", "../" * a.count("/") + "bin/busybox")
entries["bin/busybox"] = ("file", 0o755)
passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
group = b"root:x:0:\nnogroup:x:65534:\n"
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    files = {"etc/passwd": passwd, "etc/group": group}
    for path in sorted(list(entries) + list(files)):
        if path in files:
            tar.addfile(info(path, tarfile.REGTYPE, 0o644, len(files[path])), io.BytesIO(files[path]))
            continue
        kind, arg = entries[path]
        if kind == "dir":
            tar.addfile(info(path, tarfile.DIRTYPE, arg))
        elif kind == "link":
            tar.addfile(info(path, tarfile.SYMTYPE, 0o777, link=arg))
        else:
            data = open(bb, "rb").read()
            tar.addfile(info(path, tarfile.REGTYPE, arg, len(data)), io.BytesIO(data))
layer_tar = raw.getvalue()
layer_gz = gzip.compress(layer_tar, compresslevel=6, mtime=0)

def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

def dump(o):
    return json.dumps(o, separators=(",", ":"), sort_keys=False).encode()

created = "%sZ" % __import__("datetime").datetime.utcfromtimestamp(epoch).isoformat()
config = dump({
    "created": created,
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [sha(layer_tar)]},
    "history": [{"created": created, "created_by": "make-busybox-image.sh"}],
})
manifest = dump({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(layer_gz), "size": len(layer_gz)}],
})
tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
index = dump({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": sha(manifest), "size": len(manifest),
                   "annotations": {"io.containerd.image.name": name,
                                   "org.opencontainers.image.ref.name": tag}}],
})
os.makedirs(os.path.join(dest, "blobs", "sha256"), exist_ok=True)
for blob in (layer_gz, config, manifest):
    with open(os.path.join(dest, "blobs", "sha256", sha(blob)[7:]), "wb") as f:
        f.write(blob)
with open(os.path.join(dest, "index.json"), "wb") as f:
    f.write(index)
with open(os.path.join(dest, "oci-layout"), "wb") as f:
    f.write(b'{"imageLayoutVersion":"1.0.0"}')
print(sha(manifest))
PY
