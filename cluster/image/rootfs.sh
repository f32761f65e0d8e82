#!/bin/sh
# Usage: rootfs.sh PIP ROOTFS
# Fills the empty directory ROOTFS with the kaic runner image's files (make image): Debian's Python 3.11 from the
# packages pinned in debian-packages.txt, unpacked with dpkg-deb (nothing is installed on this machine, no
# maintainer script runs), and kaic's wheel with the wheels pinned in requirements.txt, installed by PIP (a
# CPython 3.11 pip, the runtime's version: pip picks the wheels for it) with --target into the directory
# Debian's Python searches. No .pyc is written (--no-compile; Debian's packages ship none): a .pyc records its
# source's mtime, and the image's tree must not depend on when it was built. Left out: dpkg, apt, perl and
# everything else only maintainer scripts use, /usr/share/{doc,man,info,lintian} and the console scripts pip
# writes (their #! names the build's Python; the image's entrypoint is `python3 -m kaic`).
set -eu
pip=$1 rootfs=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/debs" && cd "$work/debs"
grep -v '^#' "$here/debian-packages.txt" | xargs apt-get download -q -o APT::Sandbox::User=root >/dev/null
for deb in *.deb; do dpkg-deb -x "$deb" "$rootfs"; done
cd "$rootfs"
# Debian 12's merged /usr: the packages still ship /lib and /lib64 (the ELF interpreter's path), base-files'
# symlinks are not among them.
for dir in bin sbin lib lib64; do
	mkdir -p "usr/$dir"
	if [ -d "$dir" ]; then
		cp -a "$dir/." "usr/$dir/" && rm -rf "$dir"
	fi
	ln -s "usr/$dir" "$dir"
done
rm -rf usr/share/doc usr/share/man usr/share/info usr/share/lintian
ln -s python3.11 usr/bin/python3

site=usr/lib/python3/dist-packages
"$pip" install -q --disable-pip-version-check --no-compile --no-deps --only-binary :all: --require-hashes \
	--target "$site" -r "$here/requirements.txt"
rm -rf "$site/bin"
"$pip" wheel -q --disable-pip-version-check --no-deps --build-constraint "$here/build-constraints.txt" \
	-w "$work/wheel" "$repo"
"$pip" install -q --disable-pip-version-check --no-compile --no-deps --target "$site" "$work"/wheel/kaic-*.whl
# direct_url.json names the wheel's temporary path (and RECORD its hash). The console scripts stay out, and
# so do their RECORD lines: a script's shebang names the building venv, so its hash follows the checkout's path.
rm -rf "$site/bin" "$site"/kaic-*.dist-info/direct_url.json
sed -i '/direct_url.json/d' "$site"/kaic-*.dist-info/RECORD
sed -i '\#^\(\.\./\)*bin/#d' "$site"/*.dist-info/RECORD

# A non-root user for the entrypoint (uid 65532, as distroless images' nonroot), with a home it owns (make image
# passes -owner to kaic-image) and a world-writable /tmp.
mkdir -p etc home/kaic tmp && chmod 1777 tmp
printf 'root:x:0:0:root:/root:/sbin/nologin\nkaic:x:65532:65532:kaic:/home/kaic:/sbin/nologin\n' >etc/passwd
printf 'root:x:0:\nkaic:x:65532:\n' >etc/group
